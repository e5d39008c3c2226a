/*
 * mcold — the MongoDB side of `persistor migrate`: each day document of the
 * Python service ({date, deposits: {method: double dollars}, withdrawals,
 * last_updated}) converted in place to txagg's form ({date, deposits:
 * {method: int64 cents}, withdrawals, batches: [], updated_at}).
 *
 * A document is in txagg's form exactly when it has `batches` (every archive
 * write of txagg's persistor adds one), so the form is read off the document
 * itself.  Each Python document is converted by one update whose filter
 * matches only the old form with the values read (`batches` absent, the same
 * `deposits` and `withdrawals`): a rerun, a concurrent run or a write by
 * someone else in between converts nothing twice and loses nothing.  A
 * document with any value that is not within the tolerance of a whole cent
 * (pyvalue.h) is refused whole: reported with its date, _id and field, left
 * untouched.
 *
 * FerretDB v1 has no transactions and evaluates a filter on anything but
 * `_id` by reading the collection, so each update costs a scan there: n
 * documents cost O(n^2) document reads (seconds for a few hundred).
 */
#ifndef TXAGG_MCOLD_H
#define TXAGG_MCOLD_H

#include <bson/bson.h>
#include <stddef.h>

#include "mreport.h"
#include "persistor.h"

/* Every document of the collection, by date (copies; free with
 * mcold_docs_free).  PST_OK or PST_EMONGO (reported). */
int mcold_load(persistor *p, mreport *r, bson_t ***docs, size_t *n);
void mcold_docs_free(bson_t **docs, size_t n);

/* Judge one document and, unless --check, convert it; counts it in r (and
 * its cents in cold_before, its date in newest_day).  PST_OK or PST_EMONGO. */
int mcold_convert(persistor *p, mreport *r, const bson_t *doc);

/* The cents of every document in txagg's form now (cold_after).  PST_OK or
 * PST_EMONGO. */
int mcold_total(persistor *p, mreport *r);

#endif
