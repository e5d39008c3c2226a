/* Key slots as a real Redis Cluster node computes them, and what the cluster
 * layer makes of redirection replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cluster.h"
#include "keys.h"

/* Each expected value is what `CLUSTER KEYSLOT <key>` answered on a
 * redis-server 7.0.15 cluster node (tests/lib/cluster.sh); the live check of
 * thousands of random keys is in tests/integration/test_cluster_routing.c. */
static const struct {
    const char *key;
    int slot;
} vectors[] = {
    {"", 0},
    {"a", 15495},
    {"b", 3300},
    {"ab", 13567},
    {"abc", 7638},
    {"foo", 12182},
    {"bar", 5061},
    {"foobar", 12325},
    {"123456789", 12739},
    {"{p3}:x", 3689},
    {"{}", 15257},
    {"{{a}}", 10276},
    {"a{}{b}", 15033},
    {"{a}", 15495},
    {"a{b}c", 3300},
    {"{", 4092},
    {"}", 12090},
    {"{a", 10276},
    {"a}", 5921},
    {"}{a}", 15495},
    {"x{}", 2608},
    {"{}{a}", 13650},
    {"{a}{b}", 15495},
    {"{a}}", 15495},
    {"{{}}", 4092},
    {"{}}", 14790},
    {"a{b", 13340},
    {"user:1000", 1649},
    {"{user1000}.following", 3443},
    {"{user1000}.followers", 3443},
    {"foo{}{bar}", 8363},
    {"foo{{bar}}zap", 4015},
    {"foo{bar}{zap}", 5061},
    {" ", 9314},
    {"h\xc3\xa9llo", 11061},
    {"transactions", 12305},
    {"transactions:rejected", 7490},
    {"system:virtual_clock", 7845},
    {"system:tracked_days", 10136},
    {"agg:2026-01-05:deposit", 11812},
    {"agg:{2026-01-05}:deposit", 15565},
    {"{p0}", 15882},
    {"{p1}", 11819},
    {"{p15}", 2138},
    {"{p1023}", 10169},
    {"import:checkpoint:{abc}", 7638},
    {"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz", 13421},
};

static void test_keyslot_matches_what_a_cluster_node_answers(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        int got = keys_slot(vectors[i].key, strlen(vectors[i].key));
        if (got != vectors[i].slot) print_error("key '%s': slot %d, want %d\n", vectors[i].key, got, vectors[i].slot);
        assert_int_equal(got, vectors[i].slot);
    }
}

static void test_a_hash_tag_decides_the_slot_alone(void **st)
{
    (void)st;
    int tag = keys_slot("p7", 2);
    assert_int_equal(keys_slot("{p7}", 4), tag);
    assert_int_equal(keys_slot("agg:{p7}:2026-01-05", 19), tag);
    assert_int_equal(keys_slot("x{p7}y{z}", 9), tag);
    /* the length counts: bytes after len are not part of the key */
    assert_int_equal(keys_slot("{p7}garbage", 4), tag);
    assert_int_equal(keys_slot("ab{", 2), keys_slot("ab", 2));
    /* a NUL byte is an ordinary byte of a key */
    assert_int_not_equal(keys_slot("a\0b", 3), keys_slot("a", 1));
    assert_int_equal(keys_slot("{a\0b}x", 6), keys_slot("a\0b", 3));
}

static redisReply err_reply(const char *text)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ERROR;
    r.str = (char *)text;
    r.len = strlen(text);
    return r;
}

static void test_redirections_are_classified_with_their_target(void **st)
{
    (void)st;
    rcluster_redirect rd;
    redisReply r = err_reply("MOVED 3999 127.0.0.1:6381");
    assert_int_equal(rcluster_classify(&r, &rd), RCLUSTER_MOVED);
    assert_int_equal(rd.kind, RCLUSTER_MOVED);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);

    r = err_reply("ASK 15891 redis-2.example:7001");
    assert_int_equal(rcluster_classify(&r, &rd), RCLUSTER_ASK);
    assert_int_equal(rd.slot, 15891);
    assert_string_equal(rd.host, "redis-2.example");
    assert_int_equal(rd.port, 7001);

    r = err_reply("MOVED 12 ::1:7000"); /* IPv6: the last colon splits */
    assert_int_equal(rcluster_classify(&r, &rd), RCLUSTER_MOVED);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7000);
    r = err_reply("MOVED 12 [::1]:7001");
    assert_int_equal(rcluster_classify(&r, &rd), RCLUSTER_MOVED);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7001);

    r = err_reply("MOVED 5 :7002"); /* unknown endpoint: the node that answered */
    assert_int_equal(rcluster_classify(&r, &rd), RCLUSTER_MOVED);
    assert_string_equal(rd.host, "");
    assert_int_equal(rd.port, 7002);

    r = err_reply("TRYAGAIN Multiple keys request during rehashing of slot");
    assert_int_equal(rcluster_classify(&r, NULL), RCLUSTER_TRYAGAIN);
    r = err_reply("CLUSTERDOWN The cluster is down");
    assert_int_equal(rcluster_classify(&r, NULL), RCLUSTER_CLUSTERDOWN);
    r = err_reply("CLUSTERDOWN Hash slot not served");
    assert_int_equal(rcluster_classify(&r, NULL), RCLUSTER_CLUSTERDOWN);
    assert_int_equal(rcluster_classify(NULL, &rd), RCLUSTER_LOST);
    assert_int_equal(rd.kind, RCLUSTER_LOST);
}

static void test_other_replies_and_malformed_redirections_are_for_the_caller(void **st)
{
    (void)st;
    static const char *const plain[] = {
        "ERR wrong number of arguments", "CROSSSLOT Keys in request don't hash to the same slot",
        "NOSCRIPT No matching script", "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1", "MOVED -1 h:1",
        "MOVED 1 nohost", "MOVED 1 h:0", "MOVED 1 h:7000x", "MOVED 1 h:65536", "ASK 1", "MOVEDX 1 h:1", "EXECABORT Transaction discarded",
    };
    rcluster_redirect rd;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        redisReply r = err_reply(plain[i]);
        if (rcluster_classify(&r, &rd) != RCLUSTER_REPLY) print_error("'%s' classified as a redirection\n", plain[i]);
        assert_int_equal(rcluster_classify(&r, &rd), RCLUSTER_REPLY);
        assert_int_equal(rd.kind, RCLUSTER_REPLY);
    }
    redisReply ok;
    memset(&ok, 0, sizeof ok);
    ok.type = REDIS_REPLY_STATUS;
    ok.str = "MOVED 1 h:1"; /* a status, not an error */
    ok.len = strlen(ok.str);
    assert_int_equal(rcluster_classify(&ok, NULL), RCLUSTER_REPLY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyslot_matches_what_a_cluster_node_answers),
        cmocka_unit_test(test_a_hash_tag_decides_the_slot_alone),
        cmocka_unit_test(test_redirections_are_classified_with_their_target),
        cmocka_unit_test(test_other_replies_and_malformed_redirections_are_for_the_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
