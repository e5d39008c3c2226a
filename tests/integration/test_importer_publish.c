/* Hand-off 1 against the real Redis: a batch and its checkpoint commit
 * together, exactly once, when the connection dies before EXEC or the EXEC
 * reply is lost, when another writer moves the checkpoint, and while Redis
 * refuses writes; and the back-pressure backlog is lag + pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../importer/backpressure.h"
#include "../../importer/publish.h"
#include "keys.h"
#include "money.h"
#include "signals.h"
#include "testenv.h"
#include "txn.h"

#define FILE_ID "00000000000000aa"
#define CK KEYS_CHECKPOINT_PREFIX FILE_ID

static int setup(void **st)
{
    (void)st;
    testenv_flush_redis();
    return 0;
}

static long long int_reply(rconn *rc, const char *fmt, const char *arg)
{
    redisReply *r = rconn_cmd(rc, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

static void add_rows(publisher *p, int n, int64_t first_line)
{
    for (int i = 0; i < n; i++) {
        valid_row row = {.epoch = 1767584038 + i, .type = i % 2, .cents = 100 + i};
        snprintf(row.method, sizeof row.method, "m%d", i % 3);
        publish_add_row(p, &row, first_line + i);
    }
}

/* cents of every stream entry (the amount, the value's fourth word, read
 * with money_parse), summed, and the number of entries */
static void stream_sum(rconn *rc, long long *n, long long *sum)
{
    redisReply *r = rconn_cmd(rc, "XRANGE %s - +", KEYS_STREAM);
    assert_non_null(r);
    *n = (long long)r->elements;
    *sum = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        assert_int_equal(f->elements, 2);
        assert_string_equal(f->element[0]->str, TXN_ENTRY_FIELD);
        txn_entry_words w;
        assert_int_equal(txn_entry_split(f->element[1]->str, f->element[1]->len, &w), 0);
        int64_t cents;
        assert_int_equal(money_parse(w.w[3], w.len[3], &cents), MONEY_OK);
        *sum += cents;
    }
    freeReplyObject(r);
}

/* commit and wait for the outcome */
static int commit_now(publisher *p, int done, import_counts *c)
{
    int st = publish_commit(p, done, c);
    return st != PUBLISH_OK ? st : publish_sync(p, c);
}

static publisher *open_pub(rconn *rc, atomic_int *up, int64_t *rows, int *done)
{
    publisher *p = publish_new(rc, 100, up);
    assert_non_null(p);
    assert_int_equal(publish_open_file(p, FILE_ID, "dir/test.csv", "test.csv", rows, done), PUBLISH_OK);
    return p;
}

static void test_batch_and_checkpoint_commit_together(void **st)
{
    (void)st;
    rconn *rc = testenv_redis(), *admin = testenv_redis();
    atomic_int up = 0;
    int64_t rows;
    int done;
    publisher *p = open_pub(rc, &up, &rows, &done);
    assert_int_equal(rows, 0);
    assert_int_equal(done, 0);
    add_rows(p, 10, 2);
    assert_int_equal(publish_add_reject(p, REJECT_AMOUNT, 12, "x,y,\"z\"", 7), 0);
    import_counts c = {0};
    assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);
    assert_int_equal(c.published, 10);
    assert_int_equal(c.rejected[REJECT_AMOUNT], 1);
    assert_int_equal(atomic_load(&up), 1);
    assert_int_equal(int_reply(admin, "XLEN %s", KEYS_STREAM), 10);
    assert_int_equal(int_reply(admin, "XLEN %s", KEYS_REJECTED), 1);
    assert_int_equal(int_reply(admin, "HGET %s rows", CK), 11);
    assert_int_equal(int_reply(admin, "HGET %s done", CK), 0);

    redisReply *r = rconn_cmd(admin, "XRANGE %s - + COUNT 1", KEYS_STREAM);
    redisReply *f = r->element[0]->element[1];
    assert_int_equal(f->elements, 2); /* one field: "<ts> <type> <method> <amount> <src>" */
    assert_string_equal(f->element[0]->str, "tx");
    assert_string_equal(f->element[1]->str, "2026-01-05T03:33:58Z deposit m0 1.0 test.csv:2");
    freeReplyObject(r);
    r = rconn_cmd(admin, "XRANGE %s - +", KEYS_REJECTED);
    f = r->element[0]->element[1];
    static const char *const wantr[] = {"reason", "amount", "file", "dir/test.csv", "line", "12", "raw", "x,y,\"z\""};
    for (int i = 0; i < 8; i++) assert_string_equal(f->element[i]->str, wantr[i]);
    freeReplyObject(r);

    /* the final (empty) commit sets done; a reopened file reports both */
    assert_int_equal(commit_now(p, 1, &c), PUBLISH_OK);
    publish_free(p);
    p = open_pub(rc, &up, &rows, &done);
    assert_int_equal(rows, 11);
    assert_int_equal(done, 1);
    assert_int_equal(publish_reset(p), PUBLISH_OK);
    assert_int_equal(int_reply(admin, "HGET %s rows", CK), 0);
    assert_int_equal(int_reply(admin, "HGET %s done", CK), 0);
    publish_free(p);
    rconn_free(rc);
    rconn_free(admin);
}

static void check_fault_commits_once(int fault)
{
    rconn *rc = testenv_redis(), *admin = testenv_redis();
    int64_t rows;
    int done;
    publisher *p = open_pub(rc, NULL, &rows, &done);
    add_rows(p, 50, 2);
    import_counts c = {0};
    assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);
    add_rows(p, 50, 52);
    publish_test_fault(p, fault);
    uint64_t reconnects = rconn_reconnect_total();
    assert_int_equal(commit_now(p, 1, &c), PUBLISH_OK);
    assert_true(rconn_reconnect_total() > reconnects); /* the fault really cut the connection */
    long long n, sum;
    stream_sum(admin, &n, &sum);
    assert_int_equal(n, 100);
    long long want = 0;
    for (int i = 0; i < 50; i++) want += 2 * (100 + i);
    assert_int_equal(sum, want);
    assert_int_equal(c.published, 100);
    assert_int_equal(int_reply(admin, "HGET %s rows", CK), 100);
    assert_int_equal(int_reply(admin, "HGET %s done", CK), 1);
    publish_free(p);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_connection_lost_before_exec_resends_the_batch_once(void **st)
{
    (void)st;
    check_fault_commits_once(1);
}

static void test_exec_reply_lost_after_commit_is_not_sent_again(void **st)
{
    (void)st;
    check_fault_commits_once(2);
}

static void test_transaction_in_flight_is_settled_by_the_next_commit(void **st)
{
    (void)st;
    rconn *rc = testenv_redis(), *admin = testenv_redis();
    int64_t rows;
    int done;
    publisher *p = open_pub(rc, NULL, &rows, &done);
    import_counts c = {0};
    add_rows(p, 30, 2);
    assert_int_equal(publish_commit(p, 0, &c), PUBLISH_OK);
    assert_true(publish_in_flight(p));
    assert_int_equal(c.published, 0); /* not known committed yet */
    add_rows(p, 20, 32);
    assert_int_equal(publish_commit(p, 1, &c), PUBLISH_OK);
    assert_int_equal(c.published, 30);
    assert_int_equal(publish_sync(p, &c), PUBLISH_OK);
    assert_false(publish_in_flight(p));
    assert_int_equal(c.published, 50);
    assert_int_equal(c.batches, 2);
    assert_int_equal(int_reply(admin, "XLEN %s", KEYS_STREAM), 50);
    assert_int_equal(int_reply(admin, "HGET %s rows", CK), 50);
    assert_int_equal(int_reply(admin, "HGET %s done", CK), 1);
    publish_free(p);
    rconn_free(rc);
    rconn_free(admin);
}

/* Commit `batches` batches of 5 rows, then let someone else set the
 * checkpoint to `moved_rows` with the stream cut to `stream_len` entries (0:
 * left alone); the next commit must answer `want` and publish nothing. */
static void commit_then_checkpoint_moved(int batches, long moved_rows, long stream_len, int want)
{
    rconn *rc = testenv_redis(), *admin = testenv_redis();
    int64_t rows;
    int done;
    publisher *p = open_pub(rc, NULL, &rows, &done);
    import_counts c = {0};
    for (int i = 0; i < batches; i++) {
        add_rows(p, 5, 2 + 5 * i);
        assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);
    }
    freeReplyObject(rconn_cmd(admin, "HSET %s rows %ld", CK, moved_rows));
    if (stream_len) freeReplyObject(rconn_cmd(admin, "XTRIM %s MAXLEN %ld", KEYS_STREAM, stream_len));
    long len = int_reply(admin, "XLEN %s", KEYS_STREAM);
    add_rows(p, 5, 2 + 5 * batches);
    assert_int_equal(publish_commit(p, 0, &c), want);
    assert_int_equal(int_reply(admin, "XLEN %s", KEYS_STREAM), len);
    assert_int_equal(int_reply(admin, "HGET %s rows", CK), moved_rows);
    publish_free(p);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_checkpoint_moved_by_another_writer_is_a_conflict_publishing_nothing(void **st)
{
    (void)st;
    commit_then_checkpoint_moved(1, 7, 0, PUBLISH_CONFLICT); /* "another importer" went ahead */
}

/* A Redis failover can hand the importer a replica that lacks its last
 * transactions: the checkpoint is then behind what it committed.  That is
 * no conflict: the file is imported again from the checkpoint found. */
static void test_checkpoint_gone_back_is_a_rollback_publishing_nothing(void **st)
{
    (void)st;
    commit_then_checkpoint_moved(2, 5, 5, PUBLISH_ROLLED_BACK); /* the replica had only the first batch */
}

static void *restore_memory_later(void *arg)
{
    (void)arg;
    rconn *admin = testenv_redis();
    usleep(400 * 1000);
    redisReply *r = rconn_cmd(admin, "CONFIG SET maxmemory 0");
    if (r) freeReplyObject(r);
    rconn_free(admin);
    return NULL;
}

static void test_refused_transaction_is_retried_until_redis_accepts_it(void **st)
{
    (void)st;
    rconn *rc = testenv_redis(), *admin = testenv_redis();
    int64_t rows;
    int done;
    publisher *p = open_pub(rc, NULL, &rows, &done);
    add_rows(p, 20, 2);
    redisReply *r = rconn_cmd(admin, "CONFIG SET maxmemory 1");
    assert_non_null(r);
    freeReplyObject(r);
    pthread_t t;
    pthread_create(&t, NULL, restore_memory_later, NULL);
    import_counts c = {0};
    int64_t start = sig_now_ms();
    int st2 = commit_now(p, 0, &c);
    pthread_join(t, NULL);
    assert_int_equal(st2, PUBLISH_OK);
    assert_true(sig_now_ms() - start >= 300); /* it did wait for the refusal to end */
    assert_int_equal(int_reply(admin, "XLEN %s", KEYS_STREAM), 20);
    assert_int_equal(int_reply(admin, "HGET %s rows", CK), 20);
    publish_free(p);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_backlog_is_lag_plus_pending_or_the_stream_length(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    backpressure *bp = backpressure_new(rc, 1000, NULL);
    int64_t b = -1;
    assert_int_equal(backpressure_backlog(rc, &b), 0);
    assert_int_equal(b, 0); /* no stream yet */
    assert_int_equal(backpressure_ensure_group(bp), 0);
    assert_int_equal(backpressure_ensure_group(bp), 0); /* BUSYGROUP is fine */
    char ids[5][64];
    for (int i = 0; i < 5; i++) {
        redisReply *r = rconn_cmd(rc, "XADD %s * a 1", KEYS_STREAM);
        snprintf(ids[i], sizeof ids[i], "%s", r->str);
        freeReplyObject(r);
    }
    assert_int_equal(backpressure_backlog(rc, &b), 0);
    assert_int_equal(b, 5);
    redisReply *r = rconn_cmd(rc, "XREADGROUP GROUP %s c COUNT 2 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    assert_int_equal(backpressure_backlog(rc, &b), 0);
    assert_int_equal(b, 5); /* 3 lag + 2 pending */
    r = rconn_cmd(rc, "XACK %s %s %s %s", KEYS_STREAM, KEYS_GROUP, ids[0], ids[1]);
    freeReplyObject(r);
    assert_int_equal(backpressure_backlog(rc, &b), 0);
    assert_int_equal(b, 3);
    /* deleting an undelivered entry makes lag unknown (nil): XLEN bounds it */
    r = rconn_cmd(rc, "XDEL %s %s", KEYS_STREAM, ids[3]);
    freeReplyObject(r);
    assert_int_equal(backpressure_backlog(rc, &b), 0);
    assert_int_equal(b, 4);
    backpressure_free(bp);
    rconn_free(rc);
}

static void *ack_all_later(void *arg)
{
    (void)arg;
    rconn *rc = testenv_redis();
    usleep(300 * 1000);
    redisReply *r = rconn_cmd(rc, "XREADGROUP GROUP %s c COUNT 1000 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    redisReply *entries = r->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
        redisReply *a = rconn_cmd(rc, "XACK %s %s %s", KEYS_STREAM, KEYS_GROUP, entries->element[i]->element[0]->str);
        freeReplyObject(a);
    }
    freeReplyObject(r);
    rconn_free(rc);
    return NULL;
}

static void test_reserve_waits_while_the_backlog_exceeds_the_maximum(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    backpressure *bp = backpressure_new(rc, 10, NULL);
    assert_int_equal(backpressure_ensure_group(bp), 0);
    for (int i = 0; i < 10; i++) {
        redisReply *r = rconn_cmd(rc, "XADD %s * a 1", KEYS_STREAM);
        freeReplyObject(r);
    }
    pthread_t t;
    pthread_create(&t, NULL, ack_all_later, NULL);
    int64_t start = sig_now_ms();
    assert_int_equal(backpressure_reserve(bp, 5), 0);
    assert_true(sig_now_ms() - start >= 250);
    pthread_join(t, NULL);
    int64_t b;
    assert_int_equal(backpressure_backlog(rc, &b), 0);
    assert_int_equal(b, 0);
    /* room left: 10 - 0 - 5 = 5 more rows without asking Redis */
    assert_int_equal(backpressure_reserve(bp, 5), 0);
    backpressure_free(bp);
    rconn_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_batch_and_checkpoint_commit_together, setup),
        cmocka_unit_test_setup(test_connection_lost_before_exec_resends_the_batch_once, setup),
        cmocka_unit_test_setup(test_exec_reply_lost_after_commit_is_not_sent_again, setup),
        cmocka_unit_test_setup(test_transaction_in_flight_is_settled_by_the_next_commit, setup),
        cmocka_unit_test_setup(test_checkpoint_moved_by_another_writer_is_a_conflict_publishing_nothing, setup),
        cmocka_unit_test_setup(test_checkpoint_gone_back_is_a_rollback_publishing_nothing, setup),
        cmocka_unit_test_setup(test_refused_transaction_is_retried_until_redis_accepts_it, setup),
        cmocka_unit_test_setup(test_backlog_is_lag_plus_pending_or_the_stream_length, setup),
        cmocka_unit_test_setup(test_reserve_waits_while_the_backlog_exceeds_the_maximum, setup),
    };
    return testenv_run(tests, NULL, NULL);
}
