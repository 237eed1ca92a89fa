/* server_device.c - the server's Gram matrix on a device (see server_device.h). */
#include "server_device.h"

#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "aggregators/coord_math.h"
#include "base/alloc.h"
#include "runtime/config.h"
#ifdef PX_HAVE_CUDA
#include "aggregators/aggregators_cuda.h"
#endif

struct px_server_device {
    px_device *dev;
    px_stream *stream;
    float *X;     /* n_max x d gradients in device memory */
    float *d_out; /* d floats of device memory: a coordinate-wise rule's output */
    double *G;    /* n_max x n_max, host */
    size_t n_max, d;
    int coordwise; /* the rule is coordinate-wise (cw_rule, cw_f): the device computes it */
    int cw_rule;
    size_t cw_f;
#ifdef PX_HAVE_CUDA
    px_agg_cuda *agg; /* the cuBLAS Gram pass (CUDA backend) */
#endif
};

static void px__sd_free(px_server_device *sd)
{
    if (!sd) return;
    if (sd->stream) px_stream_sync(sd->stream);
#ifdef PX_HAVE_CUDA
    px_agg_cuda_destroy(sd->agg);
#endif
    if (sd->dev) px_device_free(sd->dev, sd->X);
    if (sd->dev) px_device_free(sd->dev, sd->d_out);
    px_free(sd->G);
    px_stream_destroy(sd->stream);
    px_device_close(sd->dev);
    free(sd);
}

void px_server_device_free(px_server *s)
{
    px__sd_free(s->sdev);
    s->sdev = NULL;
}

static px_status px__sd_create(px_server_device **out, px_device_kind kind, int ordinal,
                               size_t n_max, size_t d)
{
    px_server_device *sd = calloc(1, sizeof *sd);
    if (!sd) return px_error(PX_ENOMEM, "server device: cannot allocate");
    sd->n_max = n_max;
    sd->d = d;
    px_status st = px_device_open(&sd->dev, kind, ordinal);
    if (st >= 0) st = px_stream_create(sd->dev, &sd->stream);
    if (st >= 0) st = px_device_alloc(sd->dev, n_max * d * sizeof(float), (void **)&sd->X);
    if (st >= 0) st = px_device_alloc(sd->dev, d * sizeof(float), (void **)&sd->d_out);
    if (st >= 0 && !(sd->G = px_alloc(n_max * n_max * sizeof(double), "the Gram matrix")))
        st = PX_ENOMEM;
#ifdef PX_HAVE_CUDA
    if (st >= 0 && kind == PX_DEVICE_CUDA) /* chunks of 64k columns: n_max x 64k doubles */
        st = px_agg_cuda_create(&sd->agg, px_stream_native(sd->stream), n_max, 65536);
#endif
    if (st < 0) {
        px__sd_free(sd);
        return st;
    }
    *out = sd;
    return PX_OK;
}

/* G = X X^T of the n rows now in X: cuBLAS on a GPU; plain double loops on the CPU backend */
static px_status px__sd_gram(px_server_device *sd, size_t n)
{
    size_t d = sd->d;
    double *G = sd->G;
#ifdef PX_HAVE_CUDA
    if (sd->agg) return px_agg_gram_cuda(sd->agg, sd->X, d, n, d, G); /* both triangles */
#endif
    PX_CHECK(px_stream_sync(sd->stream));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            const float *a = sd->X + i * d, *b = sd->X + j * d;
            double acc = 0;
            for (size_t c = 0; c < d; c++)
                acc += (double)a[c] * (double)b[c];
            G[i * n + j] = G[j * n + i] = acc;
        }
    return PX_OK;
}

px_status px_server_device_partial(px_server *s, size_t k, double *partial)
{
    px_server_device *sd = s->sdev;
    if (k > sd->n_max)
        return px_error(PX_EINVAL, "server device: %zu gradients, room for %zu", k, sd->n_max);
    PX_CHECK(px_device_bind_thread(sd->dev));
    for (size_t i = 0; i < k; i++)
        PX_CHECK(px_device_copy(sd->dev, sd->X + i * sd->d, s->present[i], sd->d * sizeof(float),
                                PX_COPY_H2D, sd->stream));
    if (sd->coordwise) /* the flags: a scan of the rows on the host, as the CPU path's */
        return px_agg_shard_partial(s->sagg, s->present, k, partial);
    PX_CHECK(px__sd_gram(sd, k));
    return px_agg_shard_partial_gram(s->sagg, s->present, k, sd->G, partial);
}

px_status px_server_device_finish(px_server *s, size_t k, const double *sum, int *done)
{
    px_server_device *sd = s->sdev;
    *done = 0;
    if (!sd->coordwise || k == 0) return PX_OK;
    for (size_t i = 0; i < k; i++)
        if (sum[i] != 0.0) return PX_OK; /* an input to drop: the CPU path drops it, lowers f */
    if (sd->cw_rule != PX_CW_MEDIAN && k < 2 * sd->cw_f + 1)
        return PX_OK; /* too few inputs: the CPU path refuses them, with its message */
    size_t d = sd->d;
#ifdef PX_HAVE_CUDA
    if (sd->agg) {
        PX_CHECK(px_agg_coordwise_cuda(sd->agg, (px_cw_rule)sd->cw_rule, sd->X, d, k, d, sd->cw_f,
                                       sd->d_out));
        PX_CHECK(px_device_copy(sd->dev, s->agg_out, sd->d_out, d * sizeof(float), PX_COPY_D2H,
                                sd->stream));
        PX_CHECK(px_stream_sync(sd->stream));
    } else
#endif
    {
        PX_CHECK(px_stream_sync(sd->stream));
        for (size_t j = 0; j < d; j++)
            s->agg_out[j] = px_cw_coordinate((px_cw_rule)sd->cw_rule, sd->X, d, k, j, sd->cw_f);
    }
    for (size_t i = 0; i < k; i++)
        s->weights[i] = NAN; /* not a weighted sum, as px_agg_shard_finish says */
    *done = 1;
    return PX_OK;
}

px_status px_server_use_device(px_server *s, px_device_kind kind, int ordinal, px_pool *pool)
{
    const char *rule = s->cfg->aggregator->rule;
    px_agg_params ap;
    PX_CHECK(px_config_agg_params(s->cfg, &ap));
    if (s->weighted)
        return px_error(PX_ENOTSUP, "FedAvg's weighted mean reads no Gram matrix");
    if (px_agg_shard_check(rule, &ap) < 0) /* the message says why */
        return px_error_context(PX_ENOTSUP, "%s has no form that decides from a Gram matrix "
                                            "formed elsewhere",
                                rule);
    px_agg_shard *probe = s->sagg;
    if (!probe) PX_CHECK(px_agg_shard_create(&probe, rule, &ap, s->n, s->d, pool));
    int cw_rule = 0;
    size_t cw_f = 0;
    int coordwise = px_agg_shard_coordwise(probe, &cw_rule, &cw_f) == PX_OK;
    if (coordwise && s->n > PX_CW_MAX_N) {
        if (probe != s->sagg) px_agg_shard_destroy(probe);
        return px_error(PX_ENOTSUP, "%s over %zu workers: the device sorts at most %d values per "
                                    "coordinate",
                        rule, s->n, PX_CW_MAX_N);
    }
    if (!coordwise && !px_agg_shard_needs_gram(probe)) {
        if (probe != s->sagg) px_agg_shard_destroy(probe);
        return px_error(PX_ENOTSUP, "%s reads no Gram matrix (the mean without a chain)", rule);
    }
    px_status st = px__sd_create(&s->sdev, kind, ordinal, s->n, s->d);
    if (st < 0) {
        if (probe != s->sagg) px_agg_shard_destroy(probe);
        return st == PX_ENOTSUP ? px_error_context(PX_EINVAL, "the server's device") : st;
    }
    s->sdev->coordwise = coordwise;
    s->sdev->cw_rule = cw_rule;
    s->sdev->cw_f = cw_f;
    if (!s->sagg) { /* one server: the rule's sharded form over one shard, the whole vector */
        s->sagg = probe;
        s->weights = px_alloc(s->n * sizeof(double), "the rule's weights");
        s->partial = px_alloc((s->n + s->n * s->n) * sizeof(double), "the aggregator's partial");
        if (!s->weights || !s->partial) return PX_ENOMEM;
    }
    return PX_OK;
}

const char *px_server_device_name(const px_server *s)
{
    return s->sdev ? px_device_name(s->sdev->dev) : NULL;
}

int px_server_device_coordwise(const px_server *s)
{
    return s->sdev && s->sdev->coordwise;
}
