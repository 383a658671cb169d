// conv2d: forward, backward to input, backward to weight, and the bias gradient.
// x (N, C, H, W), w (O, C, KH, KW), y (N, O, HO, WO); zero padding (PH, PW); stride (SH, SW).
//   y[n,o,p,q] = sum_{c,i,j} w[o,c,i,j] * x[n, c, p*SH + i - PH, q*SW + j - PW]
// conv_transpose2d reuses these three kernels through the adjoint relations (see ops/conv.py).
#include "common.cuh"

// CONV_TILE, CONV_LANES and CONV_MAX_GROUP come from minidl/launch.py (DEFINES).

// Forward, tiled. 1-D grid of (N * groups * tiles along HO * tiles along WO) blocks of 256
// threads. Each block computes a CONV_TILE^2 pixel tile of one image for OG output channels
// (OG a multiple of CONV_LANES, at most CONV_MAX_GROUP). It walks the input channels CC
// at a time, staging in shared memory the input patch that the tile sees
// (CC x patch_h x patch_w) and the weights of all its output channels (OG x CC x KH x KW);
// every staged value is then reused by many threads. Each thread keeps its accumulators
// in registers: the loops over them have a compile-time length and are unrolled.
template <typename T>
__global__ void conv2d_forward(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                               int N, int C, int H, int W, int O, int KH, int KW, int SH, int SW,
                               int PH, int PW, int HO, int WO, int CC, int OG) {
    const int patch_h = (CONV_TILE - 1) * SH + KH, patch_w = (CONV_TILE - 1) * SW + KW;
    T* patch = dynamic_shared<T>();                       // [CC][patch_h][patch_w]
    T* weights = patch + CC * patch_h * patch_w;          // [OG][CC][KH][KW]

    const int groups = (O + OG - 1) / OG, per_thread = OG / CONV_LANES;
    const int tiles_w = (WO + CONV_TILE - 1) / CONV_TILE, tiles_h = (HO + CONV_TILE - 1) / CONV_TILE;
    long long block = blockIdx.x;
    const int tile_q = (int)(block % tiles_w), tile_p = (int)(block / tiles_w % tiles_h);
    block /= (long long)tiles_w * tiles_h;
    const int n = (int)(block / groups), o0 = (int)(block % groups) * OG;
    const int p0 = tile_p * CONV_TILE, q0 = tile_q * CONV_TILE;
    const int pixel = threadIdx.x % (CONV_TILE * CONV_TILE), lane = threadIdx.x / (CONV_TILE * CONV_TILE);
    const int tp = pixel / CONV_TILE, tq = pixel % CONV_TILE;
    const int p = p0 + tp, q = q0 + tq;

    T acc[CONV_MAX_GROUP / CONV_LANES];
#pragma unroll
    for (int k = 0; k < CONV_MAX_GROUP / CONV_LANES; ++k) acc[k] = T(0);

    for (int c0 = 0; c0 < C; c0 += CC) {
        for (int idx = threadIdx.x; idx < CC * patch_h * patch_w; idx += blockDim.x) {
            const int cc = idx / (patch_h * patch_w), r = (idx / patch_w) % patch_h, s = idx % patch_w;
            const int c = c0 + cc, row = p0 * SH - PH + r, col = q0 * SW - PW + s;
            const bool inside = c < C && row >= 0 && row < H && col >= 0 && col < W;
            patch[idx] = inside ? x[(((long long)n * C + c) * H + row) * W + col] : T(0);
        }
        for (int idx = threadIdx.x; idx < OG * CC * KH * KW; idx += blockDim.x) {
            const int og = idx / (CC * KH * KW), rest = idx % (CC * KH * KW), cc = rest / (KH * KW);
            const int o = o0 + og, c = c0 + cc;
            weights[idx] = (o < O && c < C) ? w[((long long)o * C + c) * KH * KW + rest % (KH * KW)] : T(0);
        }
        __syncthreads();
        if (p < HO && q < WO) {
            for (int cc = 0; cc < CC; ++cc)
                for (int i = 0; i < KH; ++i)
                    for (int j = 0; j < KW; ++j) {
                        const T v = patch[(cc * patch_h + tp * SH + i) * patch_w + tq * SW + j];
#pragma unroll
                        for (int k = 0; k < CONV_MAX_GROUP / CONV_LANES; ++k)
                            if (k < per_thread)
                                acc[k] += v * weights[(((lane + k * CONV_LANES) * CC + cc) * KH + i) * KW + j];
                    }
        }
        __syncthreads();
    }
    if (p < HO && q < WO) {
#pragma unroll
        for (int k = 0; k < CONV_MAX_GROUP / CONV_LANES; ++k) {
            const int o = o0 + lane + k * CONV_LANES;
            if (k < per_thread && o < O) y[(((long long)n * O + o) * HO + p) * WO + q] = acc[k];
        }
    }
}

// Backward to input, as a gather (no atomics): one thread per element of gx (N, C, H, W),
//   gx[n,c,h,v] = sum_{o,i,j} gy[n, o, (h + PH - i) / SH, (v + PW - j) / SW] * w[o,c,i,j]
// over the (i, j) for which both divisions are exact and land inside gy.
template <typename T>
__global__ void conv2d_backward_input(const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx,
                                      int N, int C, int H, int W, int O, int KH, int KW, int SH, int SW,
                                      int PH, int PW, int HO, int WO) {
    const long long index = global_index();
    if (index >= (long long)N * C * H * W) return;
    const Pixel in = pixel_of(index, H, W);
    const int h = in.row, v = in.col, c = (int)(in.plane % C);
    const long long n = in.plane / C;
    T acc = T(0);
    for (int i = 0; i < KH; ++i) {
        const int hh = h + PH - i;
        if (hh < 0 || hh % SH != 0 || hh / SH >= HO) continue;
        for (int j = 0; j < KW; ++j) {
            const int vv = v + PW - j;
            if (vv < 0 || vv % SW != 0 || vv / SW >= WO) continue;
            for (int o = 0; o < O; ++o)
                acc += gy[((n * O + o) * HO + hh / SH) * WO + vv / SW] * w[(((long long)o * C + c) * KH + i) * KW + j];
        }
    }
    gx[index] = acc;
}

// Backward to weight: one block per element of gw (O, C, KH, KW); its threads walk the
// N * HO * WO products gy[n,o,p,q] * x[n, c, p*SH + i - PH, q*SW + j - PW] and sum them
// with a block reduction (deterministic, no atomics).
template <typename T>
__global__ void conv2d_backward_weight(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ gw,
                                       int N, int C, int H, int W, int O, int KH, int KW, int SH, int SW,
                                       int PH, int PW, int HO, int WO) {
    const int j = blockIdx.x % KW, i = (blockIdx.x / KW) % KH;
    const int c = (blockIdx.x / (KW * KH)) % C, o = blockIdx.x / (KW * KH * C);
    T acc = T(0);
    for (long long t = threadIdx.x; t < (long long)N * HO * WO; t += blockDim.x) {
        const int q = t % WO, p = (t / WO) % HO;
        const long long n = t / ((long long)WO * HO);
        const int row = p * SH + i - PH, col = q * SW + j - PW;
        if (row >= 0 && row < H && col >= 0 && col < W)
            acc += gy[((n * O + o) * HO + p) * WO + q] * x[((n * C + c) * H + row) * W + col];
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) gw[blockIdx.x] = acc;
}

// Bias gradient: one block per output channel o, gb[o] = sum_{n,p,q} gy[n,o,p,q].
template <typename T>
__global__ void bias_backward(const T* __restrict__ gy, T* __restrict__ gb, int N, int O, int HW) {
    const int o = blockIdx.x;
    T acc = T(0);
    for (long long t = threadIdx.x; t < (long long)N * HW; t += blockDim.x)
        acc += gy[((t / HW) * O + o) * HW + t % HW];
    acc = block_sum(acc);
    if (threadIdx.x == 0) gb[o] = acc;
}
