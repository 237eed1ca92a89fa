/* test_model.c - the model interface and its registry: kinds by name, the MLP behind the
 * interface computing what the MLP itself computes, layer groups that tile the parameters, and
 * the active-group mask (LISA): inactive groups get zero gradient, active ones the full one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "runtime/nn/mlp.h"
#include "runtime/nn/model.h"

static void test_registry(void **state)
{
    (void)state;
    assert_true(px_model_kind_count() >= 1);
    assert_non_null(px_model_find("mlp"));
    assert_null(px_model_find("resnet"));
    px_model *m = NULL;
    uint32_t hidden[] = {8};
    px_model_spec spec = {.input_values = 4, .classes = 3, .hidden = hidden, .n_hidden = 1};
    assert_int_equal(px_model_create(&m, "resnet", &spec), PX_EINVAL);
    assert_null(m);
    assert_non_null(strstr(px_errmsg(), "resnet"));
    assert_non_null(strstr(px_errmsg(), "mlp")); /* names the known kinds */
    /* the kind's own rules: too many hidden layers, a zero width */
    uint32_t many[PX_MLP_MAX_HIDDEN + 1];
    for (size_t i = 0; i < PX_MLP_MAX_HIDDEN + 1; i++)
        many[i] = 4;
    px_model_spec deep = {
        .input_values = 4, .classes = 3, .hidden = many, .n_hidden = PX_MLP_MAX_HIDDEN + 1};
    assert_int_equal(px_model_check("mlp", &deep), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "model.hidden"));
    deep.n_hidden = PX_MLP_MAX_HIDDEN;
    assert_int_equal(px_model_check("mlp", &deep), PX_OK);
    uint32_t zero[] = {0};
    px_model_spec z = {.input_values = 4, .classes = 3, .hidden = zero, .n_hidden = 1};
    assert_int_equal(px_model_check("mlp", &z), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "model.hidden[0] = 0"));
}

static void test_groups_tile_the_parameters(void **state)
{
    (void)state;
    uint32_t hidden[] = {16, 12, 8};
    px_model_spec spec = {.input_values = 20, .classes = 5, .hidden = hidden, .n_hidden = 3};
    px_model *m;
    assert_int_equal(px_model_create(&m, "mlp", &spec), PX_OK);
    assert_string_equal(m->kind, "mlp");
    assert_int_equal(m->n_groups, 4);
    /* (20*16+16) + (16*12+12) + (12*8+8) + (8*5+5), by hand */
    assert_int_equal(m->n_params, 336 + 204 + 104 + 45);
    size_t off = 0;
    for (size_t g = 0; g < m->n_groups; g++) {
        assert_int_equal(m->groups[g].offset, off);
        off += m->groups[g].size;
    }
    assert_int_equal(off, m->n_params);
    assert_int_equal(m->groups[0].role, PX_GROUP_INPUT);
    assert_int_equal(m->groups[1].role, PX_GROUP_MIDDLE);
    assert_int_equal(m->groups[2].role, PX_GROUP_MIDDLE);
    assert_int_equal(m->groups[3].role, PX_GROUP_HEAD);
    /* the tensor table (weights and biases) tiles the same vector */
    assert_int_equal(m->tensors.count, 8);
    assert_int_equal(m->tensors.layers[7].offset + m->tensors.layers[7].size, m->n_params);
    px_model_destroy(m);
}

/* A batch of B random examples with labels, written into the model's input buffer. */
static void fill_batch(const px_model *m, void *work, uint8_t *y, size_t B, uint64_t seed)
{
    px_rng r;
    px_rng_init(&r, seed, 99, 0, 0);
    float *x = m->ops->input(work);
    for (size_t i = 0; i < B * m->input_values; i++)
        x[i] = (float)(2 * px_rng_uniform(&r) - 1);
    for (size_t i = 0; i < B; i++)
        y[i] = (uint8_t)px_rng_below(&r, m->classes);
}

static void test_interface_matches_the_mlp(void **state)
{
    (void)state;
    enum { B = 6 };
    uint32_t hidden[] = {10, 7};
    px_model_spec spec = {.input_values = 9, .classes = 4, .hidden = hidden, .n_hidden = 2};
    px_model *m;
    assert_int_equal(px_model_create(&m, "mlp", &spec), PX_OK);
    float *p = malloc(m->n_params * sizeof *p), *g1 = malloc(m->n_params * sizeof *g1);
    float *g2 = malloc(m->n_params * sizeof *g2);
    m->ops->init(m, p, 3);
    px_mlp direct;
    assert_int_equal(px_mlp_shape(&direct, 9, hidden, 2, 4), PX_OK);
    float *q = malloc(direct.n_params * sizeof *q);
    px_mlp_init(&direct, q, 3);
    assert_memory_equal(p, q, m->n_params * sizeof *p); /* same initialisation */
    void *work = m->ops->work_create(m, B);
    px_mlp_work dw;
    assert_int_equal(px_mlp_work_create(&dw, &direct, B), PX_OK);
    uint8_t y[B];
    fill_batch(m, work, y, B, 5);
    memcpy(px_mlp_input(&dw), m->ops->input(work), B * 9 * sizeof(float));
    float l1 = m->ops->loss_grad(m, work, p, y, B, NULL, NULL, g1);
    float l2 = px_mlp_loss_grad(&direct, &dw, q, y, B, g2);
    assert_true(l1 == l2);
    assert_memory_equal(g1, g2, m->n_params * sizeof *g1);
    double ls = 0;
    size_t correct = 0;
    m->ops->evaluate(m, work, p, y, B, &ls, &correct);
    assert_true(fabs(ls / B - l1) < 1e-5); /* the same loss, summed */
    assert_true(m->ops->flops_per_sample(m) > 0);
    m->ops->work_free(work);
    px_mlp_work_free(&dw);
    free(p), free(q), free(g1), free(g2);
    px_model_destroy(m);
}

static void test_active_mask(void **state)
{
    (void)state;
    enum { B = 5 };
    uint32_t hidden[] = {8, 8, 8};
    px_model_spec spec = {.input_values = 6, .classes = 3, .hidden = hidden, .n_hidden = 3};
    px_model *m;
    assert_int_equal(px_model_create(&m, "mlp", &spec), PX_OK);
    size_t n = m->n_params;
    float *p = malloc(n * sizeof *p), *full = malloc(n * sizeof *full);
    float *part = malloc(n * sizeof *part);
    m->ops->init(m, p, 11);
    void *work = m->ops->work_create(m, B);
    uint8_t y[B];
    fill_batch(m, work, y, B, 7);
    float lf = m->ops->loss_grad(m, work, p, y, B, NULL, NULL, full);
    /* masks: only the head; the head and one middle group; only the input group */
    const uint8_t masks[][4] = {{0, 0, 0, 1}, {0, 1, 0, 1}, {1, 0, 0, 0}, {0, 0, 0, 0}};
    for (size_t k = 0; k < sizeof masks / sizeof masks[0]; k++) {
        fill_batch(m, work, y, B, 7);
        for (size_t i = 0; i < n; i++)
            part[i] = NAN; /* every value must be written */
        float lp = m->ops->loss_grad(m, work, p, y, B, masks[k], NULL, part);
        assert_true(lp == lf); /* the forward pass is the same */
        for (size_t g = 0; g < m->n_groups; g++) {
            const px_layer_group *G = &m->groups[g];
            if (masks[k][g]) {
                assert_memory_equal(part + G->offset, full + G->offset, G->size * sizeof(float));
            } else {
                for (size_t i = 0; i < G->size; i++)
                    assert_true(part[G->offset + i] == 0.0f);
            }
        }
    }
    /* the full gradient is not zero anywhere a group is active (the comparison can fail) */
    double norm = 0;
    for (size_t i = 0; i < m->groups[0].size; i++)
        norm += fabs(full[i]);
    assert_true(norm > 0);
    m->ops->work_free(work);
    free(p), free(full), free(part);
    px_model_destroy(m);
}

/* Central differences of the model's float loss against its gradient, at 4 coordinates of every
 * named tensor (so that no small tensor, a bias, escapes). In float the differences carry about
 * 1e-7 / h of rounding noise; h = 2e-3 keeps that near 1e-4 while staying small enough that a
 * step rarely crosses a ReLU kink or flips a max-pool choice (h = 1e-2 does, on the CNN's first
 * layer), so a tolerance of 2e-3 absolute plus 5% relative separates a right gradient from a
 * wrong one: a dropped bias gradient in a GPT block and a max-pool routed through the wrong
 * indices both fail it. */
static void check_model_gradient(const char *kind, const px_model_spec *spec, size_t B,
                                 const px_loss_terms *terms)
{
    px_model *m;
    assert_int_equal(px_model_create(&m, kind, spec), PX_OK);
    size_t n = m->n_params;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g), *h = malloc(n * sizeof *h);
    m->ops->init(m, p, 9);
    void *work = m->ops->work_create(m, B);
    assert_non_null(work);
    size_t L = B * m->label_values;
    uint8_t *y = malloc(L);
    px_rng r;
    px_rng_init(&r, 5, 98, 0, 0);
    for (size_t i = 0; i < L; i++)
        y[i] = (uint8_t)px_rng_below(&r, m->classes);
    /* the inputs stay in the work area across calls: fill them once */
    if (m->ops->input) {
        float *x = m->ops->input(work);
        for (size_t i = 0; i < B * m->input_values; i++)
            x[i] = (float)(2 * px_rng_uniform(&r) - 1);
    } else {
        int32_t *t = m->ops->tokens(work);
        for (size_t i = 0; i < B * m->input_values; i++)
            t[i] = (int32_t)px_rng_below(&r, m->classes);
    }
    m->ops->loss_grad(m, work, p, y, B, NULL, terms, g);
    size_t checked = 0;
    for (size_t ti = 0; ti < m->tensors.count; ti++) { /* every tensor, so none can hide */
        const px_layer *G = &m->tensors.layers[ti];
        for (size_t k = 0; k < 4; k++) {
            size_t i = G->offset + (size_t)px_rng_below(&r, G->size);
            float keep = p[i];
            const float step = 2e-3f;
            p[i] = keep + step;
            double up = m->ops->loss_grad(m, work, p, y, B, NULL, terms, h);
            p[i] = keep - step;
            double down = m->ops->loss_grad(m, work, p, y, B, NULL, terms, h);
            p[i] = keep;
            double fd = (up - down) / (2.0 * step);
            if (fabs(fd - g[i]) > 2e-3 + 0.05 * fabs(fd))
                fail_msg("%s: tensor %s, parameter %zu: gradient %g, central difference %g", kind,
                         G->name, i, (double)g[i], fd);
            checked++;
        }
    }
    assert_true(checked == 4 * m->tensors.count);
    /* the active-group mask: frozen groups zero, the others exactly the full gradient */
    uint8_t *active = calloc(m->n_groups, 1);
    active[0] = active[m->n_groups - 1] = 1;
    if (m->n_groups > 3) active[2] = 1;
    float loss_full = m->ops->loss_grad(m, work, p, y, B, NULL, terms, g);
    float loss_part = m->ops->loss_grad(m, work, p, y, B, active, terms, h);
    assert_true(loss_full == loss_part);
    for (size_t grp = 0; grp < m->n_groups; grp++) {
        const px_layer_group *G = &m->groups[grp];
        if (active[grp]) {
            assert_memory_equal(h + G->offset, g + G->offset, G->size * sizeof(float));
        } else {
            for (size_t i = 0; i < G->size; i++)
                assert_true(h[G->offset + i] == 0.0f);
        }
    }
    /* evaluation sees the same loss the training pass does */
    double ls = 0;
    size_t correct = 0;
    m->ops->evaluate(m, work, p, y, B, &ls, &correct);
    if (!terms) assert_true(fabs(ls / (double)L - loss_full) < 1e-4); /* eval: the plain loss */
    assert_true(correct <= L);
    free(active);
    free(y);
    m->ops->work_free(work);
    free(p), free(g), free(h);
    px_model_destroy(m);
}

static void test_mlp_margin_gradient(void **state)
{
    (void)state;
    uint32_t hidden[] = {7};
    px_model_spec spec = {.input_values = 6, .classes = 4, .label_values = 1, .hidden = hidden,
                          .n_hidden = 1};
    px_loss_terms margin = {.margin_lambda = 0.5f};
    check_model_gradient("mlp", &spec, 5, &margin);
    /* the term's value by hand: uniform logits (zero parameters) give p = 1/4 everywhere, so
     * S = B * 4 / 16 and the loss is ln 4 + lambda ln(1 + S) */
    px_model *m;
    assert_int_equal(px_model_create(&m, "mlp", &spec), PX_OK);
    float *p = calloc(m->n_params, sizeof *p), *g = calloc(m->n_params, sizeof *g);
    void *work = m->ops->work_create(m, 5);
    uint8_t y[5] = {0, 1, 2, 3, 0};
    float loss = m->ops->loss_grad(m, work, p, y, 5, NULL, &margin, g);
    assert_true(fabs(loss - (log(4.0) + 0.5 * log(1.0 + 5 * 4 / 16.0))) < 1e-5);
    m->ops->work_free(work);
    free(p), free(g);
    px_model_destroy(m);
}

static void test_cnn_gradient(void **state)
{
    (void)state;
    uint32_t conv[] = {3, 4}, hidden[] = {6};
    px_model_spec spec = {.input_values = 14 * 14,
                          .channels = 1,
                          .rows = 14,
                          .cols = 14,
                          .classes = 5,
                          .label_values = 1,
                          .hidden = hidden,
                          .n_hidden = 1,
                          .conv = conv,
                          .n_conv = 2};
    check_model_gradient("cnn", &spec, 3, NULL);
    px_loss_terms margin = {.margin_lambda = 0.3f}; /* FedLD's margin control, exaggerated */
    check_model_gradient("cnn", &spec, 3, &margin);
    /* LeNet on 28 x 28: 6*25+6 + 16*6*25+16 + 120*400+120 + 10*120+10, by hand */
    px_model *m;
    px_model_spec lenet = {.input_values = 784,
                           .channels = 1,
                           .rows = 28,
                           .cols = 28,
                           .classes = 10,
                           .label_values = 1};
    assert_int_equal(px_model_create(&m, "cnn", &lenet), PX_OK);
    assert_int_equal(m->n_params, 156 + 2416 + 48120 + 1210);
    assert_int_equal(m->n_groups, 4);
    px_model_destroy(m);
    /* it classifies images, not text */
    lenet.tokens = 1;
    assert_int_equal(px_model_create(&m, "cnn", &lenet), PX_EINVAL);
}

static void test_gpt_gradient(void **state)
{
    (void)state;
    px_model_spec spec = {.tokens = 1,
                          .input_values = 5,
                          .classes = 7,
                          .label_values = 5,
                          .blocks = 3,
                          .width = 8,
                          .heads = 2,
                          .context = 5};
    check_model_gradient("gpt", &spec, 2, NULL);
    px_loss_terms margin = {.margin_lambda = 0.3f};
    check_model_gradient("gpt", &spec, 2, &margin);
    px_model *m;
    assert_int_equal(px_model_create(&m, "gpt", &spec), PX_OK);
    /* groups: embed, block0..2, head; sizes by hand for V=7, T=5, C=8 */
    assert_int_equal(m->n_groups, 5);
    assert_int_equal(m->groups[0].size, 7 * 8 + 5 * 8);
    assert_int_equal(m->groups[1].size,
                     8 * 2 + 24 * 8 + 24 + 64 + 8 + 8 * 2 + 32 * 8 + 32 + 8 * 32 + 8);
    assert_int_equal(m->groups[4].size, 8 * 2 + 7 * 8);
    assert_int_equal(m->groups[4].role, PX_GROUP_HEAD);
    px_model_destroy(m);
    spec.width = 9; /* not a multiple of the heads */
    assert_int_equal(px_model_create(&m, "gpt", &spec), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "model.width = 9"));
}

/* A model's total size is bounded (PX_MAX_PARAMS float32 parameters): model.hidden =
 * 65536,65536 would ask for 17 GB. The registry refuses it from the config alone (the data's
 * shape unknown: counted at its smallest) and again at creation with the real shape, before any
 * parameter is allocated, naming the fields; the count it checks is the model's own. */
static void test_model_size_bound(void **state)
{
    (void)state;
    uint32_t wide[] = {65536, 65536};
    px_model_spec cfg_only = {.hidden = wide, .n_hidden = 2}; /* config time: no data yet */
    assert_int_equal(px_model_check("mlp", &cfg_only), PX_EINVAL);
    const char *msg = px_errmsg();
    if (!strstr(msg, "model.hidden") || !strstr(msg, "268435456") || !strstr(msg, "parameters"))
        fail_msg("message lacks the field, the bound or the count: %s", msg);
    px_model_spec with_data = {.input_values = 784, .classes = 10, .hidden = wide, .n_hidden = 2};
    px_model *m = NULL;
    assert_int_equal(px_model_create(&m, "mlp", &with_data), PX_EINVAL);
    assert_null(m);
    /* (784 + 1) 65536 + (65536 + 1) 65536 + (65536 + 1) 10 = 4,347,133,962 parameters */
    assert_non_null(strstr(px_errmsg(), "4347133962 parameters"));
    /* the data's shape counts: one hidden layer of 65536 is fine from the config alone, but not
     * on inputs of 4096 values (4096 * 65536 > 2^28) */
    uint32_t one[] = {65536};
    px_model_spec narrow = {.hidden = one, .n_hidden = 1};
    assert_int_equal(px_model_check("mlp", &narrow), PX_OK);
    narrow.input_values = 4096;
    narrow.classes = 10;
    assert_int_equal(px_model_check("mlp", &narrow), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "4096 input values"));
    /* GPT: the widest, deepest transformer the kind's own rules allow is refused by the bound */
    px_model_spec gpt = {.blocks = 8, .width = 8192, .heads = 8, .context = 64};
    assert_int_equal(px_model_check("gpt", &gpt), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "model.width"));
    /* CNN: 1024 x 1024 filters and a wide linear layer on 28 x 28 images */
    uint32_t conv[] = {1024, 1024}, h[] = {65536};
    px_model_spec cnn = {.conv = conv,
                         .n_conv = 2,
                         .hidden = h,
                         .n_hidden = 1,
                         .input_values = 784,
                         .channels = 1,
                         .rows = 28,
                         .cols = 28,
                         .classes = 10,
                         .label_values = 1};
    assert_int_equal(px_model_check("cnn", &cnn), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "model.channels"));
    /* the count the bound is checked on is the created model's n_params, for every kind */
    uint32_t hs[] = {16, 12};
    px_model_spec specs[3] = {
        {.input_values = 20, .classes = 5, .hidden = hs, .n_hidden = 2},
        {.input_values = 784,
         .channels = 1,
         .rows = 28,
         .cols = 28,
         .classes = 10,
         .label_values = 1},
        {.tokens = 1,
         .input_values = 16,
         .label_values = 16,
         .classes = 40,
         .blocks = 2,
         .width = 24,
         .heads = 4,
         .context = 16},
    };
    const char *kinds[3] = {"mlp", "cnn", "gpt"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(px_model_create(&m, kinds[k], &specs[k]), PX_OK);
        assert_true(px_model_param_count(kinds[k], &specs[k]) == (double)m->n_params);
        px_model_destroy(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_groups_tile_the_parameters),
        cmocka_unit_test(test_interface_matches_the_mlp),
        cmocka_unit_test(test_active_mask),
        cmocka_unit_test(test_mlp_margin_gradient),
        cmocka_unit_test(test_cnn_gradient),
        cmocka_unit_test(test_gpt_gradient),
        cmocka_unit_test(test_model_size_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
