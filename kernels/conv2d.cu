// conv2d: forward, backward to input, backward to weight, and the bias gradient.
// x (N, C, H, W), w (O, C, KH, KW), y (N, O, HO, WO); zero padding (PH, PW); stride (SH, SW).
//   y[n,o,p,q] = sum_{c,i,j} w[o,c,i,j] * x[n, c, p*SH + i - PH, q*SW + j - PW]
// conv_transpose2d reuses these three kernels through the adjoint relations (see ops/conv.py).
#include "common.cuh"

// CONV_TILE, CONV_LANES, CONV_MAX_GROUP and WG_TILE come from minidl/ops/conv.py (TILES), MINIDL_BLOCK
// from minidl/runtime/modules.py, all as -D options.

// Forward, tiled. 1-D grid of (N * groups * tiles along HO * tiles along WO) blocks of 256
// threads. Each block computes a CONV_TILE^2 pixel tile of one image for OG output channels
// (OG a multiple of CONV_LANES, at most CONV_MAX_GROUP). It walks the input channels CC
// at a time, staging in shared memory the input patch that the tile sees
// (CC x patch_h x patch_w) and the weights of all its output channels (OG x CC x KH x KW);
// every staged value is then reused by many threads. Each thread keeps its accumulators
// in registers: the loops over them have a compile-time length and are unrolled.
// sizes: x = N*C*H*W, w = O*C*KH*KW, y = N*O*HO*WO
template <typename T>
__global__ void conv2d_forward(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                               int N, int C, int H, int W, int O, int KH, int KW, int SH, int SW,
                               int PH, int PW, int HO, int WO, int CC, int OG) {
    static_assert(CONV_TILE * CONV_TILE * CONV_LANES == MINIDL_BLOCK, "CONV_LANES threads per pixel of a tile");
    static_assert(CONV_MAX_GROUP % CONV_LANES == 0, "a group of output channels is whole lanes");
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
// sizes: gy = N*O*HO*WO, w = O*C*KH*KW, gx = N*C*H*W
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

// Backward to weight, a deterministic split-K implicit GEMM. As matrices,
//   gw[o, k] = sum_m gy[o, m] * cols[k, m],   k = (c, i, j) < K = C*KH*KW,   m = (n, p, q) < M = N*HO*WO,
// cols[k, m] = x[n, c, p*SH + i - PH, q*SW + j - PW] (0 outside x), read from x while staging, never
// stored. With has_bias, column K of cols is a row of ones: gw's column K is the bias gradient
// sum_m gy[o, m]. 2-D grid: x over WG_TILE x WG_TILE tiles of (o, k), y over splits of m into
// chunks. Each block of WG_TILE^2 threads stages a WG_TILE-wide slice of m of gy and of cols in
// shared memory, then every thread adds the WG_TILE products of its own (o, k); the block writes
// its split's sums to partial[split][o][k], which conv2d_weight_total adds in split order. No
// atomics, a fixed order of additions: the same bits on every run, and ~M/chunk times the
// parallelism of one block per weight.
// sizes: x = N*C*H*W, gy = N*O*HO*WO
template <typename T>
__global__ void conv2d_backward_weight(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ partial,
                                       int N, int C, int H, int W, int O, int KH, int KW, int SH, int SW,
                                       int PH, int PW, int HO, int WO, int has_bias, long long chunk) {
    static_assert(WG_TILE * WG_TILE == MINIDL_BLOCK, "one thread per (o, k) of a tile");
    __shared__ T gy_tile[WG_TILE][WG_TILE + 1];   // [o][m]; the +1 keeps column reads free of bank conflicts
    __shared__ T col_tile[WG_TILE][WG_TILE + 1];  // [k][m]
    const int K = C * KH * KW, columns = K + has_bias, tiles_k = (columns + WG_TILE - 1) / WG_TILE;
    const int o0 = blockIdx.x / tiles_k * WG_TILE, k0 = blockIdx.x % tiles_k * WG_TILE;  // the block's tile
    const int row = threadIdx.x / WG_TILE, lane = threadIdx.x % WG_TILE;
    const int o = o0 + row, k = k0 + lane;  // the weight this thread sums
    // the row of cols that this thread stages (k_stage) and its (c, i, j)
    const int k_stage = k0 + row;
    const int c = k_stage / (KH * KW), i = k_stage / KW % KH, j = k_stage % KW;
    const long long M = (long long)N * HO * WO, begin = blockIdx.y * chunk;
    const long long end = begin + chunk < M ? begin + chunk : M;
    T acc = T(0);
    for (long long m0 = begin; m0 < end; m0 += WG_TILE) {
        const long long m = m0 + lane;  // this thread stages gy[o, m] and cols[k_stage, m]
        T g = T(0), v = T(0);
        if (m < end) {
            const int q = (int)(m % WO), p = (int)(m / WO % HO);
            const long long n = m / ((long long)HO * WO);
            if (o < O) g = gy[((n * O + o) * HO + p) * WO + q];
            const int h = p * SH + i - PH, w = q * SW + j - PW;
            if (k_stage < K && h >= 0 && h < H && w >= 0 && w < W) v = x[((n * C + c) * H + h) * W + w];
            if (k_stage == K && has_bias) v = T(1);
        }
        gy_tile[row][lane] = g;
        col_tile[row][lane] = v;
        __syncthreads();
#pragma unroll
        for (int mm = 0; mm < WG_TILE; ++mm) acc += gy_tile[row][mm] * col_tile[lane][mm];
        __syncthreads();
    }
    if (o < O && k < columns) partial[((long long)blockIdx.y * O + o) * columns + k] = acc;
}

// The splits of conv2d_backward_weight added in order, one thread per (o, column):
// gw[o, k] for k < K, and gb[o] from column K when has_bias.
// sizes: gw = O*K
template <typename T>
__global__ void conv2d_weight_total(const T* __restrict__ partial, T* __restrict__ gw, T* __restrict__ gb,
                                    int O, int K, int has_bias, int splits) {
    const long long index = global_index();
    const int columns = K + has_bias;
    if (index >= (long long)O * columns) return;
    T acc = T(0);
    for (int s = 0; s < splits; ++s) acc += partial[(long long)s * O * columns + index];
    const int o = (int)(index / columns), k = (int)(index % columns);
    if (k < K)
        gw[(long long)o * K + k] = acc;
    else
        gb[o] = acc;
}

// conv_transpose2d's bias gradient, split like the weight gradient: block (o, s) sums
// gy[n, o, p, q] over its chunk of m = (n, p, q) into partial[s, o]; conv2d_weight_total
// (with K = 0 and the bias column) then adds the splits in order.
// sizes: gy = N*O*HW
template <typename T>
__global__ void bias_backward(const T* __restrict__ gy, T* __restrict__ partial, int N, int O, int HW,
                              long long chunk) {
    const int o = blockIdx.x;
    const long long m = (long long)N * HW, begin = blockIdx.y * chunk;
    const long long end = begin + chunk < m ? begin + chunk : m;
    T acc = T(0);
    for (long long t = begin + threadIdx.x; t < end; t += blockDim.x)
        acc += gy[((t / HW) * O + o) * HW + t % HW];
    acc = block_sum(acc);
    if (threadIdx.x == 0) partial[(long long)blockIdx.y * O + o] = acc;
}
