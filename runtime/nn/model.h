/* model.h - the model interface: what the server, the workers and the loop know of a model.
 *
 * A model is a shape (its parameters as one flat float vector, cut into named tensors and into
 * layer groups) and a table of operations on that vector. The engine never names a concrete
 * model: it asks the registry for the kind the config names (model.kind, by its lower-case
 * enum name: "mlp") and from then on uses only the operations below. Adding a model is one file
 * (runtime/nn/NAME.c) and one row in the registry (runtime/nn/models.c).
 *
 * Layer groups are the unit of LISA and of per-layer reports: consecutive ranges of the
 * parameter vector, each with a role. The input group (embeddings, the first layer) and the
 * head always train; middle groups can be frozen. Groups tile [0, n_params) in order.
 *
 * Work areas hold one forward/backward pass's activations for batches of up to batch_max
 * examples: allocated once per run and per thread, reused every step.
 */
#ifndef PX_MODEL_H
#define PX_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "runtime/nn/exec.h"

typedef enum { PX_GROUP_INPUT = 0, PX_GROUP_MIDDLE = 1, PX_GROUP_HEAD = 2 } px_group_role;

typedef struct {
    const char *name; /* "fc1", "block3", ... */
    size_t offset;    /* first parameter (floats) */
    size_t size;      /* parameters (floats) */
    px_group_role role;
} px_layer_group;

/* Everything a model kind may read to shape itself: the data's shape and the model section of
 * the config, as plain values (runtime/nn does not read the config schema). */
typedef struct {
    /* the data */
    int tokens;                  /* 1: an example is token ids (text); 0: values (pixels) */
    size_t input_values;         /* values or tokens per example (784 for 28 x 28 images) */
    size_t channels, rows, cols; /* image shape (channels x rows x cols = input_values) */
    size_t classes;              /* outputs per position: classes, or the vocabulary's size */
    size_t label_values;         /* labels per example: 1, or the window's length */
    /* the model section */
    const uint32_t *hidden;
    size_t n_hidden; /* model.hidden: hidden widths (MLP), the first linear width (CNN) */
    const uint32_t *conv;
    size_t n_conv;  /* model.channels: filters of the convolutions (CNN) */
    size_t blocks;  /* transformer blocks (GPT) */
    size_t width;   /* embedding width (GPT) */
    size_t heads;   /* attention heads (GPT) */
    size_t context; /* context length (GPT) */
} px_model_spec;

typedef struct px_model px_model;

/* Terms a local objective adds to the model's loss (federated clients); zero = none. */
typedef struct {
    float margin_lambda; /* FedLD's margin control: lambda log(1 + ||softmax||_F^2) */
} px_loss_terms;

/* The operations of one model kind. `work` is the kind's own work-area type. */
typedef struct {
    /* Initial parameters from the run seed (streams PX_STREAM_INIT): a function of the seed only.
     */
    void (*init)(const px_model *m, float *params, uint64_t seed);
    /* A work area for batches of up to batch_max examples; NULL on failure (message set). */
    void *(*work_create)(const px_model *m, size_t batch_max);
    void (*work_free)(void *work);
    /* Where the caller writes a batch: batch x input_values floats (value models), or batch x
     * input_values token ids (token models); the other is NULL. */
    float *(*input)(void *work);
    int32_t *(*tokens)(void *work);
    /* Forward and backward on the batch in input(work) with labels y (batch x label_values):
     * writes the gradient of the mean loss (over every label) into grad (n_params floats) and
     * returns that mean loss. `active` (NULL = every
     * group) marks the layer groups whose gradient is wanted; an inactive group's gradient is
     * written as zeros and its weight-gradient products are skipped. `terms` (NULL = none) adds
     * a local objective's terms to the loss and its gradient. */
    float (*loss_grad)(const px_model *m, void *work, const float *params, const uint8_t *y,
                       size_t batch, const uint8_t *active, const px_loss_terms *terms,
                       float *grad);
    /* Optional: the failure of the last loss_grad on this work area (PX_OK when none), recorded
     * again as the calling thread's error. A pass that can fail (on a GPU: model_device.h)
     * returns a NaN loss and keeps its cause for this; a CPU pass never fails. */
    px_status (*work_failed)(void *work);
    /* Forward only: adds the batch's loss summed over every label to *loss_sum and its correct
     * top-1 predictions to *correct. */
    void (*evaluate)(const px_model *m, void *work, const float *params, const uint8_t *y,
                     size_t batch, double *loss_sum, size_t *correct);
    /* Optional (text models): samples n tokens following `start` from the model's predictions,
     * with random draws from the stream of `seed`, into out; returns how many. */
    size_t (*generate)(const px_model *m, void *work, const float *params, uint64_t seed,
                       int32_t start, size_t n, int32_t *out);
    /* Optional: the same pass on an executor (exec.h), so that it runs on a GPU as well as on
     * the CPU. A work area in the executor's memory; then loss_grad's contract with every
     * array in that memory: `input` is batch x input_values floats, or token ids for a token
     * model; `targets` batch x label_values class ids; `active` stays in host memory. The mean
     * loss goes to *loss. On the CPU executor the result is loss_grad's, bit for bit. */
    void *(*xwork_create)(const px_model *m, px_nn_exec *x, size_t batch_max);
    void (*xwork_free)(px_nn_exec *x, void *work);
    px_status (*xloss_grad)(const px_model *m, px_nn_exec *x, void *work, const float *params,
                            const void *input, const int32_t *targets, size_t batch,
                            const uint8_t *active, const px_loss_terms *terms, float *grad,
                            double *loss);
    /* Multiply-adds of one forward + backward pass per example (for throughput figures). */
    double (*flops_per_sample)(const px_model *m);
    void (*destroy)(px_model *m);
} px_model_ops;

struct px_model {
    const char *kind; /* registry name */
    const px_model_ops *ops;
    size_t n_params;
    size_t input_values, classes, label_values;
    int tokens;             /* reads token ids, not values */
    px_layer_table tensors; /* named tensors ("fc1.weight"), for per-layer aggregation */
    size_t n_groups;
    const px_layer_group *groups;
    void *impl; /* the kind's own shape */
};

/* One row of the registry: a kind's name, one line for --help, its check of the spec (the
 * config loader calls it: a spec it refuses is a config error naming the model.* field), its
 * constructor, and its parameter count from a spec the check accepted (as a double: no overflow
 * for any spec; the data's fields that are still 0 at config time count at their smallest, so
 * the count is then a lower bound), with the model.* fields that set it. */
typedef struct {
    const char *name;
    const char *summary;
    px_status (*check)(const px_model_spec *spec);
    px_status (*create)(px_model **out, const px_model_spec *spec);
    double (*count)(const px_model_spec *spec);
    const char *size_fields;
} px_model_kind;

/* The registry: look a kind up by name (NULL if unknown), or walk all of them. */
const px_model_kind *px_model_find(const char *name);
size_t px_model_kind_count(void);
const px_model_kind *px_model_kind_at(size_t i);

/* Creates a model of kind `name` for `spec`. Refuses an unknown kind (naming the known ones)
 * and a spec px_model_check refuses, before allocating its parameters' worth of anything. The
 * caller owns the model (px_model_destroy). */
px_status px_model_create(px_model **out, const char *name, const px_model_spec *spec);
void px_model_destroy(px_model *m);

/* Checks a spec against kind `name` without creating anything: the kind's rules, then the size
 * bound (more than PX_MAX_PARAMS parameters is refused, naming the model.* fields, the count
 * and the bound). */
px_status px_model_check(const char *name, const px_model_spec *spec);

/* The parameter count of a spec that px_model_check accepts (see px_model_kind.count); -1 for
 * an unknown kind. */
double px_model_param_count(const char *name, const px_model_spec *spec);

#endif
