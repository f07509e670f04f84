/* exemplars.c: a series' exemplars, one slot per bucket (or one for a
 * counter), each written under a sequence count so that readers never see
 * a torn one, and taken over from a writer that died holding it. */
#include "store.h"

#include <string.h>

#include "crash.h"

/* What a reader checks after copying an exemplar: the store file may have
 * been damaged where no consistency check at open can see (exemplars are
 * rewritten while the store is in use). */
static uint64_t exemplar_sum(uint64_t value, uint64_t ts, uint64_t len, const char *text)
{
    uint64_t fixed[3] = {value, ts, len};
    return fp_checksum(fp_checksum(0, fixed, sizeof fixed), text, len);
}

int fp_exemplar_put(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot,
                    const char *text, size_t len, double value, double ts)
{
    if (len > FP_EXEMPLAR_TEXT || slot >= nslots)
        return FP_EINVAL;
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block) {
        fp_off fresh = fp_arena_alloc(s, sizeof(fp_exemplar) * nslots, 0);
        if (!fresh)
            return FP_ENOMEM;
        uint64_t zero = 0;
        block = fp_cas_rel(&se->exemplars, &zero, fresh) ? fresh : zero;
    }
    fp_exemplar *e = (fp_exemplar *)fp_at(s, block) + slot;

    /* Claim the slot by setting its busy bit (with our process table
     * entry); if another writer holds it, drop this exemplar (exemplars
     * are samples; waiting is not worth it) -- unless that writer's
     * process has died holding it: then take it over, or no exemplar
     * would ever be written there again.  No standalone fences
     * (ThreadSanitizer cannot follow them): the claim is an acquire, so
     * our words land after the previous writer's; each word is a release
     * store, so a reader that loads one (acquire) also sees the busy count
     * when it re-reads seq, and retries. */
    uint64_t seq = fp_load(&e->seq);
    if ((seq & FP_EX_BUSY) && (FP_EX_OWNER(seq) == 0 || fp_proc_alive(s, FP_EX_OWNER(seq))))
        return FP_OK;
    uint64_t mine = ((seq | (FP_EX_COUNT - 1)) + 1) | ((uint64_t)(s->proc & 0x1fffu) << 1) | FP_EX_BUSY;
    if (!atomic_compare_exchange_strong_explicit(&e->seq, &seq, mine, memory_order_acquire, memory_order_relaxed))
        return FP_OK;
    fp_crash("exemplar");
    fp_store_rel(&e->value, fp_dbits(value));
    fp_store_rel(&e->ts, fp_dbits(ts));
    fp_store_rel(&e->len, len);
    fp_store_rel(&e->sum, exemplar_sum(fp_dbits(value), fp_dbits(ts), len, text));
    uint64_t word;
    for (size_t i = 0; i < len; i += 8) {
        word = 0;
        memcpy(&word, text + i, len - i < 8 ? len - i : 8);
        fp_store_rel(&e->text[i / 8], word);
    }
    /* Done: the count (above the owner bits) stays, the busy bit goes. */
    fp_store_rel(&e->seq, mine & ~(FP_EX_BUSY | (0x1fffull << 1)));
    return FP_OK;
}

int fp_exemplar_get(const fp_store *s, const fp_series *se, uint32_t slot,
                    char *text, size_t *len, double *value, double *ts)
{
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block)
        return 0;
    fp_exemplar *e = (fp_exemplar *)fp_at(s, block) + slot;
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t s1 = fp_load_acq(&e->seq);
        if (s1 == 0)
            return 0;
        if (s1 & FP_EX_BUSY)
            continue;
        /* Acquire loads pair with the writer's release stores (see
         * fp_exemplar_put): seeing any newer word implies seeing newer seq. */
        uint64_t v = fp_load_acq(&e->value), t = fp_load_acq(&e->ts), n = fp_load_acq(&e->len);
        uint64_t sum = fp_load_acq(&e->sum);
        if (n > FP_EXEMPLAR_TEXT)
            continue;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t word = fp_load_acq(&e->text[i / 8]);
            memcpy(text + i, &word, n - i < 8 ? n - i : 8);
        }
        if (fp_load(&e->seq) == s1) {
            if (sum != exemplar_sum(v, t, n, text))
                return 0; /* damaged: no exemplar rather than a broken one */
            *value = fp_bitsd(v);
            *ts = fp_bitsd(t);
            *len = n;
            return 1;
        }
    }
    return 0;
}
