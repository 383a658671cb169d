// Fused sigmoid + loss: one pass over logits z and targets y gives the gradient with
// respect to z and per-block partial sums of the loss; a second, one-block kernel adds
// the partials in a fixed order (deterministic). kind 0: BCE, kind 1: MSE.
//   BCE: l = max(z, 0) - z*y + log(1 + e^-|z|),   dl/dz = s - y
//   MSE: l = (s - y)^2,                           dl/dz = 2 (s - y) s (1 - s),   s = sigmoid(z)
// scale is 1/count for reduction="mean" and 1 for "sum"; grad holds scale * dl/dz.
#include "common.cuh"

// sizes: z = count, y = count, grad = count
template <typename T>
__global__ void sigmoid_loss_forward(const T* __restrict__ z, const T* __restrict__ y, T* __restrict__ grad,
                                     T* __restrict__ partial, long long count, int kind, T scale) {
    // BEGIN SOLUTION exercise 6
    T local = T(0);
    for (long long i = global_index(); i < count; i += (long long)gridDim.x * blockDim.x) {
        const T zi = z[i], yi = y[i], e = exp(-fabs(zi));
        const T s = zi >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        if (kind == 0) {
            local += fmax(zi, T(0)) - zi * yi + log1p(e);
            grad[i] = scale * (s - yi);
        } else {
            const T d = s - yi;
            local += d * d;
            grad[i] = scale * T(2) * d * s * (T(1) - s);
        }
    }
    const T total = block_sum(local);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
    // END SOLUTION
}

// out[0] = scale * sum of partial[0 .. count); launched with one block.
// sizes: partial = count, out = 1
template <typename T>
__global__ void sum_partials(const T* __restrict__ partial, T* __restrict__ out, int count, T scale) {
    // BEGIN SOLUTION exercise 6
    T local = T(0);
    for (int i = threadIdx.x; i < count; i += blockDim.x) local += partial[i];
    const T total = block_sum(local);
    if (threadIdx.x == 0) out[0] = scale * total;
    // END SOLUTION
}
