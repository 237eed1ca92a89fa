/* layers.h - the layers of the CNN and GPT models, CPU reference: forward and backward of linear,
 * conv2d, max pooling, ReLU, embedding, layer norm, GELU, causal multi-head self-attention,
 * residual add, and softmax cross-entropy over a sequence.
 *
 * Plain functions over float arrays, in the manner of llm.c's train_gpt2.c. Shapes are written
 * (B,T,C)-style: B batch, T sequence length, C channels, N rows (B*T, or a batch of vectors), OC
 * output channels, V vocabulary, NH heads; every array is dense and row-major in the order given.
 *
 * Contract shared by every function:
 *  - The caller owns every buffer, activations, saved statistics and scratch alike; nothing is
 *    allocated inside, so a model sizes its buffers once per run and a step allocates nothing.
 *  - Forward functions overwrite their outputs.
 *  - Backward functions ACCUMULATE (+=) into their gradient outputs, as llm.c does: a tensor read
 *    by two layers (the residual stream, a tied embedding) then receives the sum of both
 *    contributions. The caller zeroes gradients before the backward pass. The one exception is
 *    px_crossentropy_backward, which writes dlogits: it starts the backward pass.
 *  - Any gradient output may be NULL, and the work that only it needs is skipped: dweight and
 *    dbias NULL skip the weight-gradient products (a layer frozen by LISA still passes dinp down
 *    to the layers below it), dinp NULL skips the input gradient (the first layer, whose input is
 *    data). The other outputs are computed exactly as in a full call.
 *  - Matrix products go through cblas_sgemm (OpenBLAS; the engine sets it single-threaded).
 *    Sums over a row that feed a normalisation (layer norm statistics, softmax denominators, the
 *    loss) accumulate in double.
 *  - Per-element arithmetic is in runtime/nn/layer_math.h, shared with a CUDA twin; exps (softmax,
 *    GELU) use its px_lm_expf, within 2 ulp of libm's and vectorised by the compiler.
 *  - Sizes are not checked: a model validates its configuration once, when it is shaped.
 */
#ifndef PX_NN_LAYERS_H
#define PX_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ---- linear ---------------------------------------------------------------------------------- */

/* out (N,OC) = inp (N,C) @ weight^T + bias: weight (OC,C) row-major as PyTorch's nn.Linear, bias
 * (OC) or NULL for none. */
void px_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                       size_t N, size_t C, size_t OC);

/* From dout (N,OC): dinp (N,C) += dout @ weight, dweight (OC,C) += dout^T @ inp, dbias (OC) +=
 * the sum of dout over N. inp (N,C) is the forward's input (read only when dweight is wanted),
 * weight (OC,C) its weight (read only when dinp is wanted). */
void px_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, size_t N, size_t C, size_t OC);

/* ---- conv2d ------------------------------------------------------------------------------------
 * Stride 1, zero padding P on every side, square K x K kernels, computed as im2col + GEMM per
 * image: out_b (OC, H'W') = weight (OC, C*K*K) @ col_b (C*K*K, H'W'), with H' = H + 2P - K + 1
 * and W' = W + 2P - K + 1 (the caller ensures K <= H + 2P and K <= W + 2P). Row (c*K + kh)*K + kw
 * of col_b holds input channel c shifted by (kh - P, kw - P), zeros where that falls outside. */

/* Floats of the column scratch that forward and backward need: C*K*K*H'*W' (one image). */
size_t px_conv2d_col_size(size_t C, size_t H, size_t W, size_t K, size_t P);

/* out (B,OC,H',W') = conv(inp (B,C,H,W), weight (OC,C,K,K)) + bias (OC, or NULL). col is scratch
 * of px_conv2d_col_size floats, overwritten. */
void px_conv2d_forward(float *out, float *col, const float *inp, const float *weight,
                       const float *bias, size_t B, size_t C, size_t H, size_t W, size_t OC,
                       size_t K, size_t P);

/* From dout (B,OC,H',W'): dinp (B,C,H,W) += the transposed convolution (weight^T @ dout, then
 * col2im sums the columns back onto the pixels they came from), dweight (OC,C,K,K) += dout_b @
 * col_b^T summed over images (im2col of inp is recomputed per image into col: one image of scratch
 * instead of B), dbias (OC) += the sum of dout over B, H', W'. col: scratch as for forward. */
void px_conv2d_backward(float *dinp, float *dweight, float *dbias, float *col, const float *dout,
                        const float *inp, const float *weight, size_t B, size_t C, size_t H,
                        size_t W, size_t OC, size_t K, size_t P);

/* ---- max pooling, 2x2 windows, stride 2 ------------------------------------------------------ */

/* out (B,C,H/2,W/2) = the maximum of each 2x2 window of inp (B,C,H,W); an odd last row or column is
 * dropped (floor, as PyTorch). argmax (B,C,H/2,W/2) records, for backward, where each maximum came
 * from as h*W + w within its (H,W) plane (so H*W < 2^32). A tie goes to the first maximum in
 * row-major order (top row before bottom, left before right) and a NaN wins its window, as PyTorch
 * on CPU. */
void px_maxpool_forward(float *out, uint32_t *argmax, const float *inp, size_t B, size_t C,
                        size_t H, size_t W);

/* dinp (B,C,H,W) += dout (B,C,H/2,W/2) scattered to the positions argmax recorded; the other
 * positions receive nothing. */
void px_maxpool_backward(float *dinp, const float *dout, const uint32_t *argmax, size_t B, size_t C,
                         size_t H, size_t W);

/* ---- ReLU ------------------------------------------------------------------------------------ */

/* out (N) = max(inp, 0). out may be inp (in place). */
void px_relu_forward(float *out, const float *inp, size_t N);

/* dinp (N) += dout where out > 0. Takes the forward's OUTPUT out (N), not its input: out > 0
 * exactly where inp > 0, the output is kept anyway as the next layer's input, and this lets the
 * forward run in place. */
void px_relu_backward(float *dinp, const float *dout, const float *out, size_t N);

/* d (N) = d where out > 0, else 0: the ReLU's backward in place, overwriting (a network whose
 * next layer wrote d needs no second buffer). */
void px_relu_mask(float *d, const float *out, size_t N);

/* ---- embedding ------------------------------------------------------------------------------- */

/* out (B,T,C) = wte[tokens[b,t]] + wpe[t]: tokens int32 (B,T) each in [0, V), wte (V,C) token
 * embeddings, wpe (maxT,C) position embeddings with T <= maxT. Token ids are not checked here:
 * the dataset validates them once, when it is loaded. */
void px_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                          size_t B, size_t T, size_t C);

/* dwte (V,C) += dout[b,t] at row tokens[b,t] (a token seen twice gets both), dwpe (maxT,C) +=
 * dout summed over B at rows t < T. Either may be NULL. */
void px_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                           size_t B, size_t T, size_t C);

/* ---- layer norm ------------------------------------------------------------------------------ */

/* out (N,C) = (inp - mean) * rstd * weight + bias over the last dimension, weight and bias (C),
 * rstd = 1/sqrt(var + 1e-5) with the biased variance, as PyTorch's nn.LayerNorm and GPT-2.
 * mean and rstd (N) receive each row's statistics for backward (the statistics themselves are
 * accumulated in double); either may be NULL when no backward follows. */
void px_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, size_t N, size_t C);

/* From dout (N,C): dinp (N,C), dweight (C), dbias (C) accumulated, given the forward's inp (N,C),
 * weight (C) and saved mean, rstd (N). */
void px_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, size_t N, size_t C);

/* ---- GELU (tanh approximation) --------------------------------------------------------------- */

/* out (N) = gelu(inp), the tanh approximation of GPT-2 (layer_math.h). out may be inp. */
void px_gelu_forward(float *out, const float *inp, size_t N);

/* dinp (N) += gelu'(inp) * dout; needs the forward's input inp (N), so it may not have run in
 * place. */
void px_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);

/* ---- causal multi-head self-attention -------------------------------------------------------- */

/* As llm.c's attention_forward/backward. inp (B,T,3C) holds per position the query, key and value
 * vectors [q | k | v], each C = NH * hs wide, head h in columns h*hs .. h*hs + hs - 1. Per batch
 * element b and head h:
 *
 *   preatt = q k^T / sqrt(hs)                    (T,T), only t2 <= t is used (causal)
 *   att[t] = softmax(preatt[t, 0..t]), 0 after   (T,T)
 *   out    = att v                               (T,hs), head h's columns of out (B,T,C)
 *
 * The products run as sgemm per (b,h) over the full T x T square and the mask is applied after:
 * the wasted upper triangle costs less than T^2 scalar dot products would. */

/* out (B,T,C) from inp (B,T,3C). att (B,NH,T,T) receives the attention weights (zero above the
 * diagonal) that backward needs; preatt (B,NH,T,T) the scaled scores, -INFINITY above the diagonal
 * where the mask applies, or NULL when they are not wanted (backward does not read them). */
void px_attention_forward(float *out, float *preatt, float *att, const float *inp, size_t B,
                          size_t T, size_t C, size_t NH);

/* dinp (B,T,3C) += the gradient from dout (B,T,C), given the forward's inp (B,T,3C) and att
 * (B,NH,T,T) as forward wrote it. datt and dpreatt are scratch of T*T floats each (reused for
 * every (b,h)), overwritten. Attention has no parameters, so dinp NULL does nothing. */
void px_attention_backward(float *dinp, float *dpreatt, float *datt, const float *dout,
                           const float *inp, const float *att, size_t B, size_t T, size_t C,
                           size_t NH);

/* ---- residual add ---------------------------------------------------------------------------- */

/* out (N) = a + b (elementwise). out may be a or b. */
void px_residual_forward(float *out, const float *a, const float *b, size_t N);

/* da (N) += dout, db (N) += dout; either may be NULL. */
void px_residual_backward(float *da, float *db, const float *dout, size_t N);

/* ---- softmax cross-entropy over a sequence --------------------------------------------------- */

/* logits (N,V) for N = B*T positions, targets int32 (N) each in [0, V). int32 for any vocabulary,
 * the character model's <= 256 too: the embedding reads the same token array, so a model converts
 * its byte windows once and passes one array to both. Not checked here (the dataset validates
 * token ids once). */

/* Returns the mean over N of -log softmax(logits[n])[targets[n]], computed as lse - logit with
 * the maximum subtracted and the sum and its log in double, so no logit overflows or underflows
 * the result. probs (N,V) receives softmax(logits), or is NULL in evaluation (no backward). */
double px_crossentropy_forward(float *probs, const float *logits, const int32_t *targets, size_t N,
                               size_t V);

/* dlogits (N,V) = (probs - onehot(targets)) / N, the gradient of the mean loss, WRITTEN (not
 * accumulated): it starts the backward pass. probs (N,V) as forward wrote it; dlogits may be probs
 * (computed in place). */
void px_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, size_t N,
                              size_t V);

/* ---- margin control (FedLD's local objective, ALGORITHMS.md section 2.1) --------------------- */

/* The term lambda * log(1 + S), S = the sum of probs^2 over the whole batch (N,V) (not per row,
 * not divided by N), which penalises confident predictions: returns its value, and adds its
 * gradient with respect to the logits to dlogits (N,V) (NULL: the value only),
 * 2 lambda p_nk (p_nk - q_n) / (1 + S) with q_n = sum_c p_nc^2. */
double px_margin_backward(float *dlogits, const float *probs, size_t N, size_t V, float lambda);

#endif
