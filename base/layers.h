/* layers.h - how a flat parameter vector splits into named tensors. Models publish such a
 * table; per-layer rules (FedLD), codecs and reports read it. */
#ifndef PX_LAYERS_H
#define PX_LAYERS_H

#include <stddef.h>

/* How a flat parameter vector splits into tensors (weights and biases of each layer): per-layer
 * rules (FedLD, LISA) and reports need it. Offsets and sizes count float values. */
typedef struct {
    size_t offset;
    size_t size;
    const char *name; /* "fc1.weight", ... */
} px_layer;

typedef struct {
    size_t count;
    const px_layer *layers;
} px_layer_table;

#endif
