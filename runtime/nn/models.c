/* models.c - the registry of model kinds (see model.h): one row per kind. */
#include <stdio.h>
#include <string.h>

#include "base/limits.h"
#include "base/table.h"
#include "runtime/nn/mlp.h"
#include "runtime/nn/model.h"

/* the kinds' entry points (each in its own file) */
px_status px_cnn_check(const px_model_spec *spec);
px_status px_cnn_model_create(px_model **out, const px_model_spec *spec);
double px_cnn_count(const px_model_spec *spec);
px_status px_gpt_check(const px_model_spec *spec);
px_status px_gpt_model_create(px_model **out, const px_model_spec *spec);
double px_gpt_count(const px_model_spec *spec);

static const px_model_kind px__kinds[] = {
    {"mlp", "multi-layer perceptron: [Linear, ReLU] per model.hidden width, then Linear",
     px_mlp_check, px_mlp_model_create, px_mlp_count, "model.hidden"},
    {"cnn", "LeNet-style CNN: two [conv 5x5, ReLU, max-pool], then two Linear", px_cnn_check,
     px_cnn_model_create, px_cnn_count, "model.channels and model.hidden"},
    {"gpt", "character-level transformer: embeddings, pre-norm blocks, final norm, head",
     px_gpt_check, px_gpt_model_create, px_gpt_count,
     "model.blocks, model.width and model.context"},
};

#define PX__KINDS (sizeof px__kinds / sizeof px__kinds[0])

size_t px_model_kind_count(void)
{
    return PX__KINDS;
}

const px_model_kind *px_model_kind_at(size_t i)
{
    return i < PX__KINDS ? &px__kinds[i] : NULL;
}

const px_model_kind *px_model_find(const char *name)
{
    return px_table_find(px__kinds, PX__KINDS, sizeof px__kinds[0], name);
}

static px_status px__unknown(const char *name)
{
    char known[256];
    px_table_names(px__kinds, PX__KINDS, sizeof px__kinds[0], known, sizeof known);
    return px_error(PX_EINVAL, "config: model.kind \"%s\" is not a model of this build (known: %s)",
                    name ? name : "", known);
}

px_status px_model_check(const char *name, const px_model_spec *spec)
{
    const px_model_kind *k = px_model_find(name);
    if (!k) return px__unknown(name);
    PX_CHECK(k->check(spec));
    double count = k->count(spec);
    if (count <= (double)PX_MAX_PARAMS) return PX_OK;
    char data[128];
    if (spec->input_values)
        snprintf(data, sizeof data, "on the data's %zu input values and %zu classes",
                 spec->input_values, spec->classes);
    else
        snprintf(data, sizeof data, "the data's shape not known yet, counted at its least");
    return px_error(PX_EINVAL,
                    "config: model.kind \"%s\" has %.0f parameters (set by %s, %s), more than "
                    "the %u a model may have (PX_MAX_PARAMS, 1 GiB of float32)",
                    k->name, count, k->size_fields, data, PX_MAX_PARAMS);
}

double px_model_param_count(const char *name, const px_model_spec *spec)
{
    const px_model_kind *k = px_model_find(name);
    return k ? k->count(spec) : -1.0;
}

px_status px_model_create(px_model **out, const char *name, const px_model_spec *spec)
{
    *out = NULL;
    const px_model_kind *k = px_model_find(name);
    if (!k) return px__unknown(name);
    PX_CHECK(px_model_check(name, spec));
    PX_CHECK(k->create(out, spec));
    (*out)->kind = k->name;
    return PX_OK;
}

void px_model_destroy(px_model *m)
{
    if (m) m->ops->destroy(m);
}
