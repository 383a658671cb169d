// The CPU emulator's runtime: what a .cu kernel needs from CUDA, for g++.
//
// A launch runs the grid's blocks one after another, in a shuffled order (a GPU promises
// no order either), each with its dynamic shared memory filled with NaN bytes (a GPU
// promises no contents). Kernels instantiated for float run with denormals flushed to
// zero, as CuPy compiles them (-ftz=true). Inside a block every CUDA thread is
// a fiber with its own stack; a fiber runs until it reaches __syncthreads()
// or returns, and the barrier opens when every fiber of the block has reached it. A
// fiber that returns while others wait at a barrier is a divergent barrier: an error.
// __shared__ variables become static (one copy, shared by the block's fibers, as the
// blocks run one at a time). The build follows each declaration with shared_declared(), which
// fills the variable with 0xFF bytes (NaN in float and double, -1 in an int) the first time a
// thread of a block reaches it, as dynamic shared memory is filled before each block: a read
// of a slot no thread of the block wrote shows as a wrong result, as garbage would on a GPU.
// With the race check on (launch's check_races), the grid runs twice from the same inputs,
// the threads of every block resumed in order 0, 1, 2, ... the first time and in the reverse
// order the second: a kernel whose threads read what another thread of the block writes
// without a __syncthreads() between (or write the same slot) gets two different results. The
// launch then fails, naming the kernel, the first block whose two runs differ, and the shared
// variable element (or the array element) where they differ first. It cannot see a race
// that both orders resolve alike, nor one between blocks.
// Built with -fsanitize=address, every array argument is copied into a buffer fenced by
// poisoned redzones, so an out-of-bounds access aborts
// with AddressSanitizer's report, followed by a line naming the kernel, block and thread.
// __trap() (a GPU's illegal-instruction stop) ends the launch with an error; minidl_trap(text)
// does the same with a message (on a GPU it is __trap()).
#pragma once
#define MINIDL_EMULATOR 1

#include <math.h>
#include <stdint.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <random>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#define EMU_MXCSR 1
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif

using std::ceil;
using std::exp;
using std::fabs;
using std::floor;
using std::fmax;
using std::fmin;
using std::isnan;
using std::log;
using std::log1p;
using std::max;
using std::min;
using std::sqrt;

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace emu {

enum State { RUNNING, AT_BARRIER, DONE };

// Switching between the scheduler and a fiber. On x86-64 a switch saves the callee-saved
// registers on the old stack and loads the new stack pointer (a dozen instructions);
// elsewhere ucontext does it, but also saves the signal mask with a system call, which
// makes it about a hundred times slower.
#if defined(__x86_64__)
struct Context {
    void* sp = nullptr;
};
extern "C" void minidl_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl minidl_emu_switch
    .hidden minidl_emu_switch
    .type minidl_emu_switch, @function
minidl_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size minidl_emu_switch, .-minidl_emu_switch
)");
inline void switch_context(Context& from, Context& to) { minidl_emu_switch(&from.sp, to.sp); }
// A context whose first switch enters entry() on a fresh stack (entry never returns).
inline void start_context(Context& c, char* stack, size_t size, void (*entry)()) {
    void** sp = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15));
    *--sp = nullptr;                               // entry's return address: never used
    *--sp = reinterpret_cast<void*>(entry);        // where the switch's ret lands
    for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
    c.sp = sp;
}
#else
struct Context {
    ucontext_t uc;
};
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void start_context(Context& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
    Context context;
    dim3 thread;
    State state;
    char* stack;
};

// One kernel instantiation, callable with an array of pointers to its arguments.
struct Entry {
    void (*invoke)(void* kernel, void** args);
    void* kernel;
    int nargs;
    const char* name;
    const size_t* element_bytes;  // per argument: the size of what a pointer points to (0: a scalar)
};

template <typename... Args, size_t... I>
void invoke_unpacked(void (*kernel)(Args...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<Args>*>(args[I])...);
}

template <typename... Args>
void invoke(void* kernel, void** args) {
    invoke_unpacked(reinterpret_cast<void (*)(Args...)>(kernel), args, std::index_sequence_for<Args...>{});
}

template <typename T>
constexpr size_t element_bytes() {
    if constexpr (std::is_pointer_v<T>)
        return sizeof(std::remove_pointer_t<T>);
    else
        return 0;
}

template <typename... Args>
Entry entry(void (*kernel)(Args...), const char* name) {
    static const size_t sizes[] = {element_bytes<Args>()..., 0};
    return Entry{&invoke<Args...>, reinterpret_cast<void*>(kernel), (int)sizeof...(Args), name, sizes};
}

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr size_t REDZONE = 64;

inline Fiber* current = nullptr;
inline Context scheduler;
inline dim3 block_index, block_dim, grid_dim;
inline unsigned char* dynamic_shared_memory = nullptr;
inline const Entry* running = nullptr;
inline void** running_args = nullptr;
inline const char* trap_message = nullptr;  // set by trap(): the launch ends with this error
inline const void* scheduler_stack = nullptr;  // for AddressSanitizer's fiber bookkeeping
inline size_t scheduler_stack_size = 0;

inline void syncthreads() {
    current->state = AT_BARRIER;
#ifdef EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, scheduler_stack, scheduler_stack_size);
    switch_context(current->context, scheduler);
    __sanitizer_finish_switch_fiber(fake, &scheduler_stack, &scheduler_stack_size);
#else
    switch_context(current->context, scheduler);
#endif
}

// The calling thread stops here; its block is abandoned and the launch fails with `message`.
[[noreturn]] inline void trap(const char* message) {
    trap_message = message;
    current->state = DONE;
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, scheduler_stack, scheduler_stack_size);
#endif
    switch_context(current->context, scheduler);  // never resumed
    __builtin_unreachable();
}

// Printed after AddressSanitizer's report: which CUDA thread made the bad access.
inline void report_thread() {
    if (running && current)
        std::fprintf(stderr, "minidl emulator: in kernel %s, block (%u, %u, %u), thread (%u, %u, %u)\n",
                     running->name, block_index.x, block_index.y, block_index.z, current->thread.x,
                     current->thread.y, current->thread.z);
}

inline void fiber_main() {
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack, &scheduler_stack_size);
#endif
    running->invoke(running->kernel, running_args);
    current->state = DONE;
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, scheduler_stack, scheduler_stack_size);
#endif
    switch_context(current->context, scheduler);  // never resumed
}

inline void resume(Fiber& fiber) {
    current = &fiber;
    fiber.state = RUNNING;
#ifdef EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, fiber.stack, STACK_BYTES);
    switch_context(scheduler, fiber.context);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    switch_context(scheduler, fiber.context);
#endif
}

// Run one block to completion, resuming its threads in order 0, 1, ... (or the reverse) between
// barriers, and calling at_barrier() each time every thread has arrived; returns an error message
// or nullptr.
template <typename AtBarrier>
inline const char* run_block(std::vector<Fiber>& fibers, bool reverse, AtBarrier at_barrier) {
    for (Fiber& f : fibers) {
        start_context(f.context, f.stack, STACK_BYTES, fiber_main);
        f.state = RUNNING;
    }
    const size_t n = fibers.size();
    for (;;) {
        size_t waiting = 0, done = 0;
        for (size_t k = 0; k < n; ++k) {
            Fiber& f = fibers[reverse ? n - 1 - k : k];
            if (f.state == RUNNING) resume(f);
        }
        if (trap_message) return trap_message;
        for (Fiber& f : fibers) (f.state == DONE ? done : waiting) += 1;
        if (done == fibers.size()) return nullptr;
        if (done > 0) return "divergent __syncthreads(): some threads of a block returned while others wait at a barrier";
        at_barrier();
        for (Fiber& f : fibers) f.state = RUNNING;  // everyone arrived: open the barrier
    }
}

// A copy of `bytes` at `source` whose end abuts a poisoned redzone (and whose start
// follows one; the start is exact when bytes is a multiple of 8).
inline unsigned char* fenced_copy(const void* source, size_t bytes, unsigned char** raw_out) {
    const size_t pad = (8 - bytes % 8) % 8;
    unsigned char* raw = static_cast<unsigned char*>(std::malloc(bytes + pad + 2 * REDZONE));
    unsigned char* data = raw + REDZONE + pad;
    if (source) std::memcpy(data, source, bytes);
#ifdef EMU_ASAN
    ASAN_POISON_MEMORY_REGION(raw, REDZONE + pad);
    ASAN_POISON_MEMORY_REGION(data + bytes, REDZONE);
#endif
    *raw_out = raw;
    return data;
}

inline void release(unsigned char* raw, size_t bytes) {
    const size_t pad = (8 - bytes % 8) % 8;
#ifdef EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(raw, bytes + pad + 2 * REDZONE);
#endif
    std::free(raw);
}

// Static __shared__ variables: each is filled with 0xFF bytes when the first thread of a block
// reaches its declaration (block_serial counts the blocks run; a Shared holds the block it was
// last filled for, and what the race check needs to name an element of it).
struct Shared {
    void* address;
    size_t bytes, element_bytes;
    const char* name;
    unsigned long long serial;
};
inline unsigned long long block_serial = 0;
inline std::vector<Shared> shared_variables;

inline void shared_declared(void* variable, size_t bytes, size_t element_bytes, const char* name) {
    for (Shared& s : shared_variables) {
        if (s.address == variable) {
            if (s.serial != block_serial) std::memset(variable, 0xFF, bytes), s.serial = block_serial;
            return;
        }
    }
    std::memset(variable, 0xFF, bytes);
    shared_variables.push_back(Shared{variable, bytes, element_bytes, name, block_serial});
}

enum ArgKind { SCALAR = 0, ARRAY = 1, READONLY_ARRAY = 2 };
using Bytes = std::vector<unsigned char>;

// The launch's array arguments as the kernel sees them: fenced copies of the caller's arrays.
struct Arrays {
    int n;
    void** args;
    const int* kinds;
    const size_t* sizes;
    std::vector<void*> pointers;
    std::vector<unsigned char*> raws;

    Arrays(int n_, void** args_, const int* kinds_, const size_t* sizes_)
        : n(n_), args(args_), kinds(kinds_), sizes(sizes_), pointers(n_), raws(n_, nullptr) {
        for (int k = 0; k < n; ++k)
            if (kinds[k] != SCALAR) pointers[k] = fenced_copy(caller(k), sizes[k], &raws[k]);
    }
    ~Arrays() {
        for (int k = 0; k < n; ++k)
            if (kinds[k] != SCALAR) release(raws[k], sizes[k]);
    }
    void* caller(int k) const { return *static_cast<void**>(args[k]); }
    void reset() {  // the caller's contents again, as before the first block
        for (int k = 0; k < n; ++k)
            if (kinds[k] != SCALAR) std::memcpy(pointers[k], caller(k), sizes[k]);
    }
    std::vector<Bytes> written() const {  // what the kernel may have written
        std::vector<Bytes> out(n);
        for (int k = 0; k < n; ++k) {
            const unsigned char* p = static_cast<const unsigned char*>(pointers[k]);
            if (kinds[k] == ARRAY) out[k].assign(p, p + sizes[k]);
        }
        return out;
    }
    void restore(const std::vector<Bytes>& saved) {
        for (int k = 0; k < n; ++k)
            if (kinds[k] == ARRAY) std::memcpy(pointers[k], saved[k].data(), sizes[k]);
    }
    void copy_back() const {
        for (int k = 0; k < n; ++k)
            if (kinds[k] == ARRAY) std::memcpy(caller(k), pointers[k], sizes[k]);
    }
};

// A fresh block: its index, dynamic shared memory filled with NaN bytes, static __shared__ to be
// filled as its threads reach them.
inline void begin_block(const dim3& b, size_t shared_bytes) {
    block_index = b;
    if (shared_bytes) std::memset(dynamic_shared_memory, 0xFF, shared_bytes);
    ++block_serial;
}

inline const char* run_grid(const std::vector<dim3>& order, std::vector<Fiber>& fibers, size_t shared_bytes,
                            bool reverse) {
    for (const dim3& b : order) {
        begin_block(b, shared_bytes);
        if (const char* failure = run_block(fibers, reverse, [] {})) return failure;
    }
    return nullptr;
}

// The block's shared memory at a barrier: every static variable its threads have reached (an empty
// entry for one they have not), then the dynamic shared memory.
inline std::vector<Bytes> shared_state(size_t shared_bytes) {
    std::vector<Bytes> state;
    for (const Shared& s : shared_variables) {
        const unsigned char* p = static_cast<const unsigned char*>(s.address);
        state.emplace_back(s.serial == block_serial ? Bytes(p, p + s.bytes) : Bytes());
    }
    state.emplace_back(dynamic_shared_memory, dynamic_shared_memory + shared_bytes);
    return state;
}

// The first element at which a and b differ, or -1.
inline long long first_difference(const Bytes& a, const Bytes& b, size_t element_bytes) {
    if (a.size() != b.size() || a.empty()) return -1;
    for (size_t j = 0; j < a.size(); ++j)
        if (a[j] != b[j]) return (long long)(j / (element_bytes ? element_bytes : 1));
    return -1;
}

// Runs the grid again block by block, each block twice from the same state (threads in order,
// then reversed), and describes the first difference: in shared memory at a barrier, else in an
// array argument. Returns false if no block's two runs differ.
inline bool describe_race(const Entry& e, const std::vector<dim3>& order, std::vector<Fiber>& fibers,
                          size_t shared_bytes, Arrays& arrays, char* message, size_t size) {
    arrays.reset();
    for (const dim3& b : order) {
        const std::vector<Bytes> before = arrays.written();
        std::vector<std::vector<Bytes>> states[2];
        std::vector<Bytes> after[2];
        for (int reverse = 0; reverse < 2; ++reverse) {
            arrays.restore(before);
            begin_block(b, shared_bytes);
            if (run_block(fibers, reverse, [&] { states[reverse].push_back(shared_state(shared_bytes)); })) return false;
            states[reverse].push_back(shared_state(shared_bytes));
            after[reverse] = arrays.written();
        }
        const int written = snprintf(message, size,
                                     "a race between the threads of block (%u, %u, %u): running them in order 0, 1, 2, "
                                     "... and in the reverse order gives two results; ",
                                     b.x, b.y, b.z);
        char* rest = message + written;
        const size_t left = written < (int)size ? size - written : 0;
        const size_t epochs = std::min(states[0].size(), states[1].size());
        for (size_t t = 0; t < epochs; ++t) {
            char when[40] = "when the block ends";
            if (t + 1 < epochs) snprintf(when, sizeof when, "at barrier %zu", t + 1);
            for (size_t v = 0; v < states[0][t].size() && v < states[1][t].size(); ++v) {
                const bool dynamic = v + 1 == states[0][t].size();
                const long long at = first_difference(states[0][t][v], states[1][t][v],
                                                      dynamic ? 1 : shared_variables[v].element_bytes);
                if (at < 0) continue;
                if (dynamic)
                    snprintf(rest, left, "dynamic shared memory differs at byte %lld %s", at, when);
                else
                    snprintf(rest, left, "__shared__ %s[%lld] differs %s", shared_variables[v].name, at, when);
                return true;
            }
        }
        for (int k = 0; k < arrays.n; ++k) {
            const long long at = first_difference(after[0][k], after[1][k], e.element_bytes[k]);
            if (at < 0) continue;
            snprintf(rest, left,
                     "argument %d differs at element %lld (a thread reads what another wrote with no "
                     "__syncthreads() between, or two threads write one place)",
                     k + 1, at);
            return true;
        }
    }
    return false;
}

inline int launch(const Entry* entries, int count, int index, const unsigned* grid, const unsigned* block,
                  size_t shared_bytes, int nargs, void** args, const int* kinds, const size_t* sizes,
                  int check_races, char* error, size_t error_size) {
    if (index < 0 || index >= count) {
        snprintf(error, error_size, "no kernel entry %d", index);
        return 1;
    }
    const Entry& e = entries[index];
    if (nargs != e.nargs) {
        snprintf(error, error_size, "%s takes %d arguments, the launch passed %d", e.name, e.nargs, nargs);
        return 1;
    }
    Arrays arrays(nargs, args, kinds, sizes);
    std::vector<void*> argv(nargs);
    for (int k = 0; k < nargs; ++k) argv[k] = kinds[k] == SCALAR ? args[k] : &arrays.pointers[k];
    unsigned char* shared_raw = nullptr;
    dynamic_shared_memory = fenced_copy(nullptr, shared_bytes, &shared_raw);

    grid_dim = dim3{grid[0], grid[1], grid[2]};
    block_dim = dim3{block[0], block[1], block[2]};
    running = &e;
    running_args = argv.data();
    trap_message = nullptr;
#ifdef EMU_ASAN
    __sanitizer_set_death_callback(report_thread);
#endif
    std::vector<Fiber> fibers(block_dim.x * block_dim.y * block_dim.z);
    for (size_t t = 0; t < fibers.size(); ++t) {
        fibers[t].thread = dim3{unsigned(t % block_dim.x), unsigned(t / block_dim.x % block_dim.y),
                                unsigned(t / (block_dim.x * block_dim.y))};
        fibers[t].stack = static_cast<char*>(std::malloc(STACK_BYTES));
    }
    std::vector<dim3> order;
    order.reserve((size_t)grid_dim.x * grid_dim.y * grid_dim.z);
    for (unsigned z = 0; z < grid_dim.z; ++z)
        for (unsigned y = 0; y < grid_dim.y; ++y)
            for (unsigned x = 0; x < grid_dim.x; ++x) order.push_back(dim3{x, y, z});
    static std::mt19937 shuffler(20261123u);  // a fixed seed: runs repeat, launches differ
    std::shuffle(order.begin(), order.end(), shuffler);
#ifdef EMU_MXCSR
    const unsigned saved_csr = _mm_getcsr();
    if (std::strstr(e.name, "<float>")) _mm_setcsr(saved_csr | 0x8040);  // flush-to-zero, denormals-are-zero
#endif
    char race[512] = "";
    const char* failure = run_grid(order, fibers, shared_bytes, false);
    if (!failure && check_races) {
        const std::vector<Bytes> first = arrays.written();
        arrays.reset();
        failure = run_grid(order, fibers, shared_bytes, true);
        if (!failure && arrays.written() != first) {
            if (!describe_race(e, order, fibers, shared_bytes, arrays, race, sizeof race))
                snprintf(race, sizeof race, "a race: two runs with the threads in opposite orders give two results");
            failure = race;
        }
    }
#ifdef EMU_MXCSR
    _mm_setcsr(saved_csr);
#endif
    for (Fiber& f : fibers) {
#ifdef EMU_ASAN
        // a thread abandoned at a barrier or a trap leaves its frames' redzones poisoned: unpoison its
        // stack before it goes back to the heap, or a later allocation there reads as a stack overflow
        ASAN_UNPOISON_MEMORY_REGION(f.stack, STACK_BYTES);
#endif
        std::free(f.stack);
    }
    release(shared_raw, shared_bytes);
    if (failure) {
        snprintf(error, error_size, "%s: %s", e.name, failure);
        return 1;
    }
    arrays.copy_back();
    return 0;
}

}  // namespace emu

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() emu::syncthreads()
#define threadIdx (emu::current->thread)
#define blockIdx (emu::block_index)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define minidl_dynamic_shared (emu::dynamic_shared_memory)
#define __trap() emu::trap("__trap() called")
#define minidl_trap(message) emu::trap(message)

// AddressSanitizer's runtime arrives with the kernel library (dlopen), not first in the
// process, and reads its options before Python could set them: give them here.
extern "C" __attribute__((visibility("default"))) const char* __asan_default_options() {
    return "verify_asan_link_order=0:detect_leaks=0";
}

// The exported entry point of a built kernel file, over its table of instantiations.
#define MINIDL_EMULATOR_EXPORT(table)                                                                          \
    extern "C" __attribute__((visibility("default"))) int minidl_emu_launch(                                  \
        int index, const unsigned* grid, const unsigned* block, size_t shared, int nargs, void** args,          \
        const int* kinds, const size_t* sizes, int check_races, char* error, size_t error_size) {               \
        return emu::launch(table, (int)(sizeof(table) / sizeof(table[0])), index, grid, block, shared, nargs, \
                           args, kinds, sizes, check_races, error, error_size);                              \
    }
