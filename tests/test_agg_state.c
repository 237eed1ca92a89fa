/* test_agg_state.c - the aggregators' state across steps (px_agg_state_save / _load): a run
 * interrupted after k steps and resumed from the saved state into a fresh aggregator gives, bit
 * for bit, what the uninterrupted run gives, for every rule of the registry (with the options
 * that give the stateful ones their state, and with pre-aggregation chains); the state matters
 * (a fresh aggregator without it gives another output); and saved bytes that do not fit are
 * refused with a message that says what and why, leaving the aggregator as it was. */
#include "agg_test.h"

#define N      7    /* inputs per step */
#define D      1100 /* not a multiple of the 512-column blocks, so every pass has a tail */
#define K      3    /* steps before the interruption */
#define M      3    /* steps after it */
#define HEADER PX_AGG_STATE_HEADER_BYTES

/* One configuration: a rule, its parameters as "key=value;key=value", whether it carries state
 * from one step to the next, and a column range that is zero in the first K steps (so that a
 * FedLD layer keeps an unset history flag in the saved state). */
typedef struct {
    const char *rule;
    const char *sets;
    bool stateful;
    size_t zero_lo, zero_hi;
} state_case;

static px_agg *make(const char *rule, const px_agg_params *p, size_t n_max, size_t d, px_pool *pool)
{
    px_agg *a;
    if (px_agg_create(&a, rule, p, n_max, d, NULL, pool) != PX_OK)
        fail_msg("create %s: %s", rule, px_errmsg());
    return a;
}

/* The inputs of one step, from the seeded streams (seed 11, purpose 99, a = worker + 1 or 0 for
 * the common direction, b = step): five workers send mu + noise, two send -3 mu + noise (so the
 * robust rules and the clipping have something to remove), a new mu at every step. */
static void make_inputs(agg_data *g, uint64_t step, const state_case *sc)
{
    px_rng r;
    float mu[D];
    px_rng_init(&r, 11, 99, 0, step);
    for (size_t c = 0; c < g->d; c++)
        mu[c] = (float)(0.1 * px_rng_normal(&r));
    for (size_t i = 0; i < g->n; i++) {
        px_rng_init(&r, 11, 99, i + 1, step);
        float *x = agg_row(g, i);
        bool bad = i + 2 >= g->n;
        for (size_t c = 0; c < g->d; c++)
            x[c] = (bad ? -3.0f * mu[c] : mu[c]) + (float)(0.5 * px_rng_normal(&r));
        if (sc && step < K)
            for (size_t c = sc->zero_lo; c < sc->zero_hi; c++)
                x[c] = 0.0f;
    }
}

static void step_ok(px_agg *a, agg_data *g, uint64_t step, float *out)
{
    if (px_agg_run(a, g->rows, g->n, step, out, NULL) != PX_OK)
        fail_msg("run at step %llu: %s", (unsigned long long)step, px_errmsg());
}

/* saves a's state into a new buffer of exactly px_agg_state_bytes(a) bytes */
static unsigned char *save(const px_agg *a, size_t *len)
{
    *len = px_agg_state_bytes(a);
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    if (px_agg_state_save(a, buf, *len) != PX_OK) fail_msg("save: %s", px_errmsg());
    return buf;
}

static void expect_refused(px_agg *a, const unsigned char *buf, size_t len, const char *why)
{
    px_status st = px_agg_state_load(a, buf, len);
    if (st != PX_EINVAL)
        fail_msg("load of %zu bytes gave %d, expected PX_EINVAL (%s)", len, st, why);
    if (!strstr(px_errmsg(), why)) fail_msg("message '%s' does not say '%s'", px_errmsg(), why);
}

/* ---- resume = no interruption ---------------------------------------------------------------- */

/* A runs K steps and saves; B is created afresh and loads; A, B and C (never interrupted, another
 * thread count) run M more steps: every output of A, B and C is the same bit for bit, and so are
 * the states at the end. F, created afresh without the state, gives another output at step K
 * when the rule carries state, the same when it does not. */
static void check_resume(const state_case *sc)
{
    px_agg_params p = agg_params_from(sc->rule, sc->sets);
    px_pool *pool;
    assert_int_equal(px_pool_create(&pool, 2), PX_OK);
    agg_data g = agg_data_new(N, D);
    float *oa = malloc(D * sizeof *oa), *ob = malloc(D * sizeof *ob), *oc = malloc(D * sizeof *oc),
          *of = malloc(D * sizeof *of);
    px_agg *A = make(sc->rule, &p, N, D, NULL), *C = make(sc->rule, &p, N, D, pool);
    for (uint64_t s = 0; s < K; s++) {
        make_inputs(&g, s, sc);
        step_ok(A, &g, s, oa);
        step_ok(C, &g, s, oc);
    }
    size_t len, len2;
    unsigned char *saved = save(A, &len);
    if (sc->stateful)
        assert_true(len > HEADER);
    else
        assert_int_equal(len, HEADER);

    px_agg *B = make(sc->rule, &p, N, D, pool), *F = make(sc->rule, &p, N, D, NULL);
    if (px_agg_state_load(B, saved, len) != PX_OK) fail_msg("load %s: %s", sc->rule, px_errmsg());
    unsigned char *again = save(B, &len2); /* what was loaded is what was saved */
    assert_int_equal(len2, len);
    assert_memory_equal(again, saved, len);
    free(again);

    for (uint64_t s = K; s < K + M; s++) {
        make_inputs(&g, s, sc);
        step_ok(A, &g, s, oa);
        step_ok(B, &g, s, ob);
        step_ok(C, &g, s, oc);
        if (memcmp(oa, ob, D * sizeof *oa) != 0)
            fail_msg("%s [%s]: the resumed aggregator differs at step %llu", sc->rule, sc->sets,
                     (unsigned long long)s);
        if (memcmp(oc, ob, D * sizeof *oc) != 0)
            fail_msg("%s [%s]: the uninterrupted aggregator differs at step %llu", sc->rule,
                     sc->sets, (unsigned long long)s);
        if (s == K) {
            step_ok(F, &g, s, of);
            bool same = memcmp(of, ob, D * sizeof *of) == 0;
            if (sc->stateful && same)
                fail_msg("%s [%s]: a fresh aggregator gives the resumed output: no state?",
                         sc->rule, sc->sets);
            if (!sc->stateful && !same)
                fail_msg("%s [%s]: a fresh aggregator differs: state that is not saved", sc->rule,
                         sc->sets);
        }
    }
    unsigned char *sa = save(A, &len), *sb = save(B, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(sa, sb, len);

    free(sa);
    free(sb);
    free(saved);
    px_agg_destroy(A);
    px_agg_destroy(B);
    px_agg_destroy(C);
    px_agg_destroy(F);
    px_pool_destroy(pool);
    agg_data_free(&g);
    free(oa);
    free(ob);
    free(oc);
    free(of);
}

static const state_case stateful_cases[] = {
    {"flag", "warm_start=1;m=3;iters=3", true, 0, 0},
    {"flag", "warm_start=1;init=random;m=2;iters=2;seed=5", true, 0, 0},
    /* four layers, the second of one float (always the plain mean), the third zero until the
     * interruption: the saved flags are 1, 1, 0, 1 */
    {"fedld", "layers=300,1,500,299;kappa=0.5", true, 301, 801},
    {"cclip", "tau=1;cclip_iters=2", true, 0, 0},
};

static const state_case chain_cases[] = {
    {"flag", "warm_start=1;m=2;pre=clip,bucketing;clip_norm=5;seed=3", true, 0, 0},
    {"cclip", "tau=1;pre=nnm,bucketing;f=1", true, 0, 0},
    {"fedld", "layers=600,500;pre=nnm;f=2", true, 0, 0},
    {"median", "pre=bucketing;seed=9", false, 0, 0},
    {"krum", "pre=clip,nnm;f=1;clip_norm=3", false, 0, 0},
};

static void test_stateful_rules_resume(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof stateful_cases / sizeof stateful_cases[0]; i++)
        check_resume(&stateful_cases[i]);
}

static void test_chains_resume(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof chain_cases / sizeof chain_cases[0]; i++)
        check_resume(&chain_cases[i]);
}

/* Every rule of the registry: the stateful ones with the options that give them state, every
 * other one with its defaults (f = 1), which must then need no state to resume. A rule added
 * later with state it does not save fails here. */
static void test_every_rule_resumes(void **state)
{
    (void)state;
    for (size_t i = 0; i < px_agg_rule_count(); i++) {
        const char *name = px_agg_rule_at(i)->name;
        state_case sc = {name, "f=1", false, 0, 0};
        if (!strcmp(name, "flag")) sc = (state_case){name, "warm_start=1", true, 0, 0};
        if (!strcmp(name, "cclip")) sc = (state_case){name, "tau=2", true, 0, 0};
        if (!strcmp(name, "fedld")) sc = (state_case){name, "layers=1000,100", true, 0, 0};
        check_resume(&sc);
    }
    /* FA without warm_start starts afresh at every step: no state */
    check_resume(&(state_case){"flag", "m=3", false, 0, 0});
}

/* ---- FedLD: every flag is saved on its own layer ----------------------------------------------
 */

static void test_fedld_flags(void **state)
{
    (void)state;
    const state_case *sc = &stateful_cases[2];
    px_agg_params p = agg_params_from(sc->rule, sc->sets);
    agg_data g = agg_data_new(N, D);
    float *ob = malloc(D * sizeof *ob), *ox = malloc(D * sizeof *ox);
    px_agg *A = make("fedld", &p, N, D, NULL);
    for (uint64_t s = 0; s < K; s++) {
        make_inputs(&g, s, sc);
        step_ok(A, &g, s, ob);
    }
    size_t len;
    unsigned char *saved = save(A, &len);
    /* payload: u32 layer count, then per layer u64 size and u8 flag */
    assert_int_equal(len, HEADER + 4 + 4 * 9);
    const size_t sizes[4] = {300, 1, 500, 299};
    const unsigned char flags[4] = {1, 1, 0, 1};
    assert_int_equal(saved[HEADER], 4);
    for (size_t l = 0; l < 4; l++) {
        const unsigned char *e = saved + HEADER + 4 + 9 * l;
        assert_int_equal(e[0] | e[1] << 8, sizes[l]);
        assert_int_equal(e[8], flags[l]);
    }
    make_inputs(&g, K, sc);
    step_ok(A, &g, K, ob);
    /* the third layer's flag set: that layer's output changes, and only that layer's */
    px_agg *B = make("fedld", &p, N, D, NULL);
    saved[HEADER + 4 + 9 * 2 + 8] = 1;
    assert_int_equal(px_agg_state_load(B, saved, len), PX_OK);
    step_ok(B, &g, K, ox);
    assert_memory_equal(ox, ob, 301 * sizeof *ox);
    assert_memory_equal(ox + 801, ob + 801, 299 * sizeof *ox);
    assert_true(memcmp(ox + 301, ob + 301, 500 * sizeof *ox) != 0);
    /* a flag that is neither 0 nor 1, or another layer table of the same d: refused */
    px_agg *B2 = make("fedld", &p, N, D, NULL);
    saved[HEADER + 4 + 9 * 2 + 8] = 2;
    expect_refused(B2, saved, len, "fedld: history flag of layer 2 is 2, expected 0 or 1");
    saved[HEADER + 4 + 9 * 2 + 8] = 0;
    px_agg_params q = p;
    assert_int_equal(px_agg_params_set(&q, "layers", "300,1,400,399"), PX_OK);
    px_agg *B3 = make("fedld", &q, N, D, NULL);
    expect_refused(B3, saved, len,
                   "fedld: history saved for layer 2 of 500 floats, this aggregator's layer 2 "
                   "has 400");
    assert_int_equal(px_agg_params_set(&q, "layers", "1100"), PX_OK);
    px_agg *B4 = make("fedld", &q, N, D, NULL);
    expect_refused(B4, saved, len, "fedld: history saved for 4 layers, this aggregator has 1");
    free(saved);
    px_agg_destroy(A);
    px_agg_destroy(B);
    px_agg_destroy(B2);
    px_agg_destroy(B3);
    px_agg_destroy(B4);
    agg_data_free(&g);
    free(ob);
    free(ox);
}

/* ---- hostile bytes --------------------------------------------------------------------------- */

/* A's state after K steps, A's output at step K, and the state after step 0 (another centre) */
typedef struct {
    px_agg_params p;
    unsigned char *state, *early;
    size_t len, early_len;
    float *next;
} saved_run;

static saved_run run_and_save(const char *rule, const char *sets)
{
    state_case sc = {rule, sets, true, 0, 0};
    saved_run r = {.p = agg_params_from(sc.rule, sc.sets)};
    agg_data g = agg_data_new(N, D);
    r.next = malloc(D * sizeof *r.next);
    px_agg *A = make(rule, &r.p, N, D, NULL);
    for (uint64_t s = 0; s < K; s++) {
        make_inputs(&g, s, NULL);
        step_ok(A, &g, s, r.next);
        if (s == 0) r.early = save(A, &r.early_len);
    }
    r.state = save(A, &r.len);
    make_inputs(&g, K, NULL);
    step_ok(A, &g, K, r.next);
    px_agg_destroy(A);
    agg_data_free(&g);
    return r;
}

static void saved_run_free(saved_run *r)
{
    free(r->state);
    free(r->early);
    free(r->next);
}

/* b's output at step K is the one of the saved run: its state is the loaded one */
static void expect_next(px_agg *b, const saved_run *r)
{
    agg_data g = agg_data_new(N, D);
    float *out = malloc(D * sizeof *out);
    make_inputs(&g, K, NULL);
    step_ok(b, &g, K, out);
    assert_memory_equal(out, r->next, D * sizeof *out);
    free(out);
    agg_data_free(&g);
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    saved_run r = run_and_save("cclip", "tau=1");
    assert_int_equal(r.len, HEADER + 4 * D);
    px_agg *b = make("cclip", &r.p, N, D, NULL);
    assert_int_equal(px_agg_state_load(b, r.state, r.len), PX_OK);
    /* every shorter prefix */
    for (size_t len = 0; len < r.len; len++)
        expect_refused(b, r.state, len, "truncated");
    expect_refused(b, r.state, 20, "aggregator state: 20 bytes, shorter than the 48-byte header");
    expect_refused(b, r.state, r.len - 1,
                   "aggregator state of \"cclip\": the header announces 4400 payload bytes, 4399 "
                   "follow (truncated)");
    /* extra bytes after the state */
    unsigned char *longer = calloc(r.len + 8, 1);
    memcpy(longer, r.state, r.len);
    for (size_t extra = 1; extra <= 8; extra++)
        expect_refused(b, longer, r.len + extra, "trailing bytes");
    expect_refused(b, longer, r.len + 3, "announces 4400 payload bytes, 4403 follow");
    free(longer);
    expect_next(b, &r);
    px_agg_destroy(b);
    saved_run_free(&r);
}

static void test_wrong_rule_or_size(void **state)
{
    (void)state;
    saved_run flag = run_and_save("flag", "warm_start=1;m=3");
    saved_run cc = run_and_save("cclip", "tau=1");
    px_agg_params p;
    px_agg_params_default(&p);
    px_agg *c2 = make("cclip", &p, N, 2 * D, NULL), *c = make("cclip", &cc.p, N, D, NULL);
    px_agg *f = make("flag", &flag.p, N, D, NULL);
    /* c and f hold the saved states; every refused load below must leave them so */
    assert_int_equal(px_agg_state_load(c, cc.state, cc.len), PX_OK);
    assert_int_equal(px_agg_state_load(f, flag.state, flag.len), PX_OK);
    expect_refused(c2, flag.state, flag.len,
                   "aggregator state: saved for rule \"flag\" with d = 1100 and n_max = 7, this "
                   "aggregator is \"cclip\" with d = 2200 and n_max = 7");
    expect_refused(c, flag.state, flag.len, "saved for rule \"flag\" with d = 1100");
    expect_refused(c2, cc.state, cc.len,
                   "saved for rule \"cclip\" with d = 1100 and n_max = 7, this aggregator is "
                   "\"cclip\" with d = 2200");
    px_agg *c9 = make("cclip", &cc.p, 9, D, NULL);
    expect_refused(c9, cc.state, cc.len,
                   "with d = 1100 and n_max = 7, this aggregator is "
                   "\"cclip\" with d = 1100 and n_max = 9");
    expect_refused(f, cc.state, cc.len, "saved for rule \"cclip\"");
    /* the same rule with other options that the state depends on */
    px_agg_params q = flag.p;
    q.warm_start = false;
    px_agg *fcold = make("flag", &q, N, D, NULL);
    expect_refused(fcold, flag.state, flag.len,
                   "aggregator state: flag: the saved state holds a warm-start subspace");
    q = flag.p;
    q.m = 2;
    px_agg *fm2 = make("flag", &q, N, D, NULL);
    expect_refused(fm2, flag.state, flag.len,
                   "flag: warm-start subspace saved for up to 3 columns, this aggregator keeps "
                   "up to 2");
    size_t cold_len;
    unsigned char *cold = save(fcold, &cold_len);
    assert_int_equal(cold_len, HEADER);
    expect_refused(f, cold, cold_len, "flag: the saved state has no warm-start subspace");
    free(cold);
    /* a stateless rule takes its own empty state, and nothing else */
    px_agg *med = make("median", &p, N, D, NULL);
    size_t med_len;
    unsigned char *med_state = save(med, &med_len);
    assert_int_equal(med_len, HEADER);
    assert_int_equal(px_agg_state_load(med, med_state, med_len), PX_OK);
    expect_refused(med, cc.state, cc.len, "saved for rule \"cclip\"");
    unsigned char forged[HEADER + 4] = {0};
    memcpy(forged, med_state, HEADER);
    forged[40] = 4; /* payload_bytes = 4, and 4 bytes follow */
    expect_refused(med, forged, sizeof forged,
                   "aggregator state: rule \"median\" carries no state, got 4 payload bytes");
    free(med_state);
    /* after all that, c and f go on exactly as the saved runs */
    expect_next(c, &cc);
    expect_next(f, &flag);
    px_agg *list[] = {c2, c, c9, f, fcold, fm2, med};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        px_agg_destroy(list[i]);
    saved_run_free(&flag);
    saved_run_free(&cc);
}

static void test_flipped_header_bytes(void **state)
{
    (void)state;
    saved_run r = run_and_save("flag", "warm_start=1;m=3;iters=2");
    px_agg *b = make("flag", &r.p, N, D, NULL);
    assert_int_equal(px_agg_state_load(b, r.state, r.len), PX_OK);
    /* every bit of every header byte: each field is checked against what this aggregator
     * expects, so no flip goes through */
    for (size_t at = 0; at < HEADER; at++)
        for (int bit = 0; bit < 8; bit++) {
            r.state[at] ^= (unsigned char)(1u << bit);
            char what[64];
            snprintf(what, sizeof what, "byte %zu bit %d", at, bit);
            px_status st = px_agg_state_load(b, r.state, r.len);
            if (st != PX_EINVAL) fail_msg("flipped %s: load gave %d", what, st);
            if (strncmp(px_errmsg(), "aggregator state", 16) != 0)
                fail_msg("flipped %s: message '%s'", what, px_errmsg());
            r.state[at] ^= (unsigned char)(1u << bit);
        }
    /* the messages of each field */
    r.state[0] ^= 1;
    expect_refused(b, r.state, r.len, "these bytes are not aggregator state");
    r.state[0] ^= 1;
    r.state[4] = 2;
    expect_refused(b, r.state, r.len,
                   "aggregator state: format version 2, this build reads "
                   "version 1");
    r.state[4] = 1;
    r.state[9] ^= 0x20; /* "flag" -> "fLag" */
    expect_refused(b, r.state, r.len, "saved for rule \"fLag\" with d = 1100");
    r.state[9] ^= 0x20;
    r.state[20] = 'x'; /* a stray byte in the name's padding */
    expect_refused(b, r.state, r.len, "saved for rule \"flag????????x\"");
    r.state[20] = 0;
    r.state[25] ^= 1; /* d + 256 */
    expect_refused(b, r.state, r.len, "saved for rule \"flag\" with d = 1356 and n_max = 7");
    r.state[25] ^= 1;
    r.state[47] = 0x80; /* payload_bytes beyond anything */
    expect_refused(b, r.state, r.len, "(truncated)");
    r.state[47] = 0;
    uint64_t payload = 0;
    for (int i = 0; i < 8; i++)
        payload |= (uint64_t)r.state[40 + i] << (8 * i);
    assert_int_equal(payload, r.len - HEADER);
    r.state[40] = (unsigned char)(payload - 4); /* 4 fewer than follow (low byte >= 4) */
    expect_refused(b, r.state, r.len, "follow (trailing bytes)");
    r.state[40] = (unsigned char)payload;
    expect_next(b, &r);
    px_agg_destroy(b);
    saved_run_free(&r);
}

/* values the rule cannot take: refused before anything is replaced */
static void test_nonfinite_payload(void **state)
{
    (void)state;
    saved_run cc = run_and_save("cclip", "tau=1");
    px_agg *c = make("cclip", &cc.p, N, D, NULL);
    assert_int_equal(px_agg_state_load(c, cc.state, cc.len), PX_OK);
    /* the early state (another centre) with a NaN at its last coordinate: had the load written
     * the coordinates before checking them, c's centre would now be the early one */
    const unsigned char nan_bits[4] = {0x00, 0x00, 0xC0, 0x7F}, inf_bits[4] = {0, 0, 0x80, 0x7F};
    memcpy(cc.early + cc.early_len - 4, nan_bits, 4);
    expect_refused(c, cc.early, cc.early_len,
                   "aggregator state: cclip: the saved centre has a non-finite value at "
                   "coordinate 1099 (nan)");
    memcpy(cc.early + HEADER + 4 * 17, inf_bits, 4);
    expect_refused(c, cc.early, cc.early_len, "coordinate 17 (inf)");
    expect_next(c, &cc);

    saved_run fl = run_and_save("flag", "warm_start=1;m=3");
    px_agg *f = make("flag", &fl.p, N, D, NULL);
    assert_int_equal(px_agg_state_load(f, fl.state, fl.len), PX_OK);
    assert_int_equal(fl.early_len, HEADER + 8 + 3 * 4 * D); /* u32 m_cap, u32 rows, 3 rows */
    memcpy(fl.early + HEADER + 8 + 4 * (2 * D + 5), inf_bits, 4);
    expect_refused(f, fl.early, fl.early_len,
                   "flag: the saved warm-start subspace has a non-finite value (inf) in column 2 "
                   "at coordinate 5");
    /* more columns than the subspace holds, and a length that does not match the columns */
    unsigned char keep = fl.state[HEADER + 4];
    fl.state[HEADER + 4] = 4;
    expect_refused(f, fl.state, fl.len, "flag: warm-start subspace of 4 columns, more than its 3");
    fl.state[HEADER + 4] = 2;
    expect_refused(f, fl.state, fl.len, "expected 8808 for 2 columns of d = 1100 floats");
    fl.state[HEADER + 4] = keep;
    expect_next(f, &fl);
    px_agg_destroy(c);
    px_agg_destroy(f);
    saved_run_free(&cc);
    saved_run_free(&fl);
}

static void test_save_buffer_and_size(void **state)
{
    (void)state;
    px_agg_params p;
    px_agg_params_default(&p);
    p.warm_start = true;
    p.m = 3;
    px_agg *f = make("flag", &p, N, D, NULL);
    /* before the first step the subspace is empty; after it, 3 columns of d floats */
    assert_int_equal(px_agg_state_bytes(f), HEADER + 8);
    agg_data g = agg_data_new(N, D);
    float *out = malloc(D * sizeof *out);
    make_inputs(&g, 0, NULL);
    step_ok(f, &g, 0, out);
    size_t need = px_agg_state_bytes(f);
    assert_int_equal(need, HEADER + 8 + 3 * 4 * D);
    unsigned char *buf = malloc(need);
    memset(buf, 0xAB, need);
    assert_int_equal(px_agg_state_save(f, buf, need - 1), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "aggregator state: a buffer of 13255 bytes, the state of "
                                        "\"flag\" needs 13256"));
    assert_int_equal(buf[0], 0xAB); /* untouched */
    assert_int_equal(px_agg_state_save(f, buf, need), PX_OK);
    /* the header, byte by byte */
    const unsigned char head[24] = {'P', 'X', 'A', 'S', 1, 0, 0, 0, 'f', 'l', 'a', 'g'};
    assert_memory_equal(buf, head, 24);
    assert_int_equal(buf[24] | buf[25] << 8, D);
    assert_int_equal(buf[32], N);
    assert_int_equal(buf[40] | buf[41] << 8, 8 + 3 * 4 * D);
    for (size_t i = 26; i < 32; i++)
        assert_int_equal(buf[i], 0);
    free(buf);
    free(out);
    agg_data_free(&g);
    px_agg_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stateful_rules_resume),  cmocka_unit_test(test_chains_resume),
        cmocka_unit_test(test_every_rule_resumes),     cmocka_unit_test(test_fedld_flags),
        cmocka_unit_test(test_truncated_and_trailing), cmocka_unit_test(test_wrong_rule_or_size),
        cmocka_unit_test(test_flipped_header_bytes),   cmocka_unit_test(test_nonfinite_payload),
        cmocka_unit_test(test_save_buffer_and_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
