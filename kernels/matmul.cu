// gemm: C = op(A) op(B) for a batch of matrices, the one kernel behind Linear and matmul on the
// device (cuBLAS cannot be called while a stream captures a graph, our own kernels can).
//   op(A) is (M, K): A stored (M, K), or (K, M) when TRANS_A (then op(A) = A^T);
//   op(B) is (K, N): B stored (K, N), or (N, K) when TRANS_B;
//   C (batch, M, N), contiguous; matrix b of A starts at b * SA (SA = 0: one A for every b), of B at b * SB.
//   C[b, m, n] = sum_k op(A)[b, m, k] * op(B)[b, k, n], summed in k order (the same bits on every run).
// Grid (tiles along N, tiles along M, batch) of GEMM_THREADS threads. Each block computes a
// GEMM_TILE x GEMM_TILE tile of C: it walks K GEMM_DEPTH at a time, staging the tile's rows of op(A)
// and columns of op(B) in shared memory, where every staged value is read by GEMM_TILE / GEMM_MICRO
// threads; each thread keeps a GEMM_MICRO x GEMM_MICRO block of C in registers.
#include "common.cuh"

// GEMM_TILE, GEMM_DEPTH and GEMM_MICRO come from minidl/ops/linalg.py (TILES) as -D options.
#define GEMM_THREADS ((GEMM_TILE / GEMM_MICRO) * (GEMM_TILE / GEMM_MICRO))

template <typename T>
__global__ void gemm(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, int M, int N, int K,
                     int TRANS_A, int TRANS_B, long long SA, long long SB) {
    static_assert(GEMM_THREADS == MINIDL_BLOCK, "one block of MINIDL_BLOCK threads per tile of C");
    static_assert(GEMM_TILE % GEMM_MICRO == 0, "a tile is whole micro-tiles");
    static_assert((GEMM_TILE * GEMM_DEPTH) % GEMM_THREADS == 0, "every thread stages as many values");
    __shared__ T a_tile[GEMM_DEPTH][GEMM_TILE];  // a_tile[k][m] = op(A)[m0 + m, k0 + k]
    __shared__ T b_tile[GEMM_DEPTH][GEMM_TILE];  // b_tile[k][n] = op(B)[k0 + k, n0 + n]

    const int m0 = blockIdx.y * GEMM_TILE, n0 = blockIdx.x * GEMM_TILE;
    const long long batch = blockIdx.z;
    A += batch * SA;
    B += batch * SB;
    C += batch * M * (long long)N;
    const int lanes = GEMM_TILE / GEMM_MICRO;  // threads along a row of the tile
    const int tm = (threadIdx.x / lanes) * GEMM_MICRO, tn = (threadIdx.x % lanes) * GEMM_MICRO;

    T acc[GEMM_MICRO][GEMM_MICRO];
#pragma unroll
    for (int i = 0; i < GEMM_MICRO; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_MICRO; ++j) acc[i][j] = T(0);

    for (int k0 = 0; k0 < K; k0 += GEMM_DEPTH) {
        for (int idx = threadIdx.x; idx < GEMM_TILE * GEMM_DEPTH; idx += GEMM_THREADS) {
            // consecutive threads read consecutive addresses of the stored matrix
            const int along = idx % GEMM_TILE, depth = idx / GEMM_TILE;
            const int ka = TRANS_A ? depth : idx % GEMM_DEPTH, ma = TRANS_A ? along : idx / GEMM_DEPTH;
            const int m = m0 + ma, k = k0 + ka;
            a_tile[ka][ma] = (m < M && k < K) ? A[TRANS_A ? (long long)k * M + m : (long long)m * K + k] : T(0);
            const int kb = TRANS_B ? idx % GEMM_DEPTH : depth, nb = TRANS_B ? idx / GEMM_DEPTH : along;
            const int n = n0 + nb, kk = k0 + kb;
            b_tile[kb][nb] = (n < N && kk < K) ? B[TRANS_B ? (long long)n * K + kk : (long long)kk * N + n] : T(0);
        }
        __syncthreads();
        for (int k = 0; k < GEMM_DEPTH; ++k) {
            T a[GEMM_MICRO], b[GEMM_MICRO];
#pragma unroll
            for (int i = 0; i < GEMM_MICRO; ++i) a[i] = a_tile[k][tm + i];
#pragma unroll
            for (int j = 0; j < GEMM_MICRO; ++j) b[j] = b_tile[k][tn + j];
#pragma unroll
            for (int i = 0; i < GEMM_MICRO; ++i)
#pragma unroll
                for (int j = 0; j < GEMM_MICRO; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < GEMM_MICRO; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_MICRO; ++j) {
            const int m = m0 + tm + i, n = n0 + tn + j;
            if (m < M && n < N) C[(long long)m * N + n] = acc[i][j];
        }
}
