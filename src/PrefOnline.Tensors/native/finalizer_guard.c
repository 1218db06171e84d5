/*
 * finalizer_guard.c: libPrefOnlineFinalizerGuard.so, a shim in front of TorchSharp's libLibTorchSharp.so
 * that keeps the .NET finalizer thread from freeing native objects that libtorch may still be reading.
 *
 * Why. TorchSharp 0.107 wraps at::Scalar, at::Tensor and at::Generator in classes whose finalizers call
 * THSTorch_dispose_scalar / THSTensor_dispose / THSGenerator_dispose, and its P/Invokes pass raw handles
 * (THSTensor_add(Handle, other.Handle, alpha.Handle)). A Scalar made for one call (the alpha = 1 of every
 * `a + b`, `t.mul_(0.9)`, TorchSharp's own AdamW) is unreachable once its handle has been read, so a
 * garbage collection on any thread during the native call lets the finalizer thread free it while libtorch
 * reads it: garbage values, "Unknown scalar type", or a crash. No TorchSharp release fixes it.
 *
 * How. The managed side (src/PrefOnline.Tensors/FinalizerGuard.cs) makes TorchSharp's DllImport of
 * "LibTorchSharp" resolve to THIS library. It is linked with DT_NEEDED on libLibTorchSharp.so (rpath
 * $ORIGIN), so dlsym(guard, "THSTensor_add") finds TorchSharp's own function through the dependency list,
 * while the three disposers below are found here first. Each disposer:
 *   - on a thread other than the finalizer thread (Dispose(), dispose scopes): frees at once, through the
 *     real function (dlsym(RTLD_NEXT, ...), i.e. libLibTorchSharp.so's);
 *   - on the .NET finalizer thread (marked once by prefonline_guard_mark_finalizer_thread, thread_local):
 *     only queues the handle; a reaper thread of this library frees it later.
 *
 * Why a delay is enough. A handle reaches a finalizer only after the GC found its managed wrapper
 * unreachable, so no NEW call can start with it; only calls already in flight can still read it. libtorch
 * reads a Scalar argument when it dispatches (microseconds into the call). The reaper sweeps the queue
 * every SWEEP_INTERVAL_MS (1000 ms, CLOCK_MONOTONIC) and frees an entry only once it has survived
 * GRACE_SWEEPS (2) sweeps, i.e. at the third sweep after it was queued: 2 to 3 s after the finalizer ran.
 * If the process is stopped (SIGSTOP, a debugger, a frozen container) the monotonic clock runs on, so one
 * stop can swallow one interval — the sweep after the resume comes at once — but not two: a call in flight
 * still gets at least one full second of running time after the resume before its argument is freed.
 * A Tensor argument is held by reference for the whole kernel, not only at dispatch; a Tensor reaches
 * the finalizer only if no dispose scope holds it (ours hold every tensor), and then a kernel would have to
 * run longer than the grace on that very tensor. Memory cost: objects the finalizer frees live 2-3 s longer.
 *
 * prefonline_guard_drain frees every queued handle at once: for tests and shutdown, only when no thread can
 * be inside a TorchSharp call. Counters (queued / freed from the queue / freed directly / pending) feed a
 * metric. prefonline_guard_set_passthrough(1) makes the finalizer thread free at once, as unguarded
 * TorchSharp does: a diagnostic for the stress test (tests/PrefOnline.Learning.Tests/Stress), not a setting.
 *
 * Built by build/TorchSharp.targets with gcc (no other dependency); see README "Tensor engine: TorchSharp".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

enum { SWEEP_INTERVAL_MS = 1000, GRACE_SWEEPS = 2 };

enum handle_kind { KIND_SCALAR, KIND_TENSOR, KIND_GENERATOR, KIND_COUNT };

static const char *const real_names[KIND_COUNT] = {
    "THSTorch_dispose_scalar", "THSTensor_dispose", "THSGenerator_dispose",
};

typedef void (*dispose_fn)(void *);

static dispose_fn real_dispose[KIND_COUNT];
static char load_error[512];

struct pending_handle {
    void *handle;
    uint64_t queued_at_sweep; /* sweeps completed when it was queued */
    int kind;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pending_handle *queue;
static size_t queue_length, queue_capacity;
static uint64_t sweeps_completed; /* under queue_lock */

static _Atomic uint64_t queued_total, freed_from_queue_total, freed_directly_total;
static _Atomic int finalizer_thread_marked, passthrough;
static int automatic_sweeps = 1; /* under queue_lock */
static _Thread_local int is_finalizer_thread;

static pthread_once_t reaper_once = PTHREAD_ONCE_INIT;

/* The real disposers, looked up once when the library is loaded; a failure is reported through
 * prefonline_guard_load_error, which the managed side checks before any tensor exists. */
__attribute__((constructor)) static void resolve_real_disposers(void)
{
    for (int kind = 0; kind < KIND_COUNT; kind++) {
        real_dispose[kind] = (dispose_fn)dlsym(RTLD_NEXT, real_names[kind]);
        if (real_dispose[kind] == NULL && load_error[0] == '\0') {
            const char *why = dlerror();
            snprintf(load_error, sizeof load_error, "%s not found after the guard (is libLibTorchSharp.so its dependency?): %s",
                     real_names[kind], why ? why : "no error text");
        }
    }
}

static void free_now(int kind, void *handle)
{
    if (real_dispose[kind] == NULL) {
        fprintf(stderr, "prefonline finalizer guard: %s is missing, cannot free a handle: %s\n", real_names[kind], load_error);
        abort();
    }
    real_dispose[kind](handle);
}

static void sleep_ms(long milliseconds)
{
    struct timespec remaining = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &remaining, &remaining) == EINTR) {
    }
}

/* One sweep: counts it, then frees (outside the lock, so the finalizer thread never waits on libtorch)
 * every entry that has survived GRACE_SWEEPS earlier sweeps. Returns how many it freed. The reaper's
 * sweeps check automatic_sweeps under the lock, so none runs once prefonline_guard_set_automatic_sweeps(0)
 * has returned. */
static size_t sweep(int ignore_grace, int automatic)
{
    struct pending_handle *ripe = NULL;
    size_t ripe_count = 0, kept = 0;
    pthread_mutex_lock(&queue_lock);
    if (automatic && !automatic_sweeps) {
        pthread_mutex_unlock(&queue_lock);
        return 0;
    }
    uint64_t sweep_number = ++sweeps_completed;
    if (queue_length > 0) {
        ripe = malloc(queue_length * sizeof *ripe);
        if (ripe == NULL) {
            pthread_mutex_unlock(&queue_lock);
            return 0; /* try again next sweep */
        }
        for (size_t i = 0; i < queue_length; i++) {
            if (ignore_grace || sweep_number - queue[i].queued_at_sweep > GRACE_SWEEPS)
                ripe[ripe_count++] = queue[i];
            else
                queue[kept++] = queue[i];
        }
        queue_length = kept;
    }
    pthread_mutex_unlock(&queue_lock);
    for (size_t i = 0; i < ripe_count; i++) free_now(ripe[i].kind, ripe[i].handle);
    free(ripe);
    atomic_fetch_add(&freed_from_queue_total, ripe_count);
    return ripe_count;
}

static void *reaper_main(void *unused)
{
    (void)unused;
    for (;;) {
        sleep_ms(SWEEP_INTERVAL_MS);
        sweep(0, 1);
    }
    return NULL;
}

static void start_reaper(void)
{
    pthread_attr_t attributes;
    pthread_t reaper;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    int error = pthread_create(&reaper, &attributes, reaper_main, NULL);
    pthread_attr_destroy(&attributes);
    if (error != 0) {
        fprintf(stderr, "prefonline finalizer guard: cannot start the reaper thread: %s\n", strerror(error));
        abort();
    }
    pthread_setname_np(reaper, "torch-reaper");
}

static void dispose_or_queue(int kind, void *handle)
{
    if (handle == NULL) return;
    if (!is_finalizer_thread || atomic_load(&passthrough)) {
        free_now(kind, handle);
        atomic_fetch_add(&freed_directly_total, 1);
        return;
    }
    pthread_mutex_lock(&queue_lock);
    if (queue_length == queue_capacity) {
        size_t capacity = queue_capacity ? 2 * queue_capacity : 1024;
        struct pending_handle *grown = realloc(queue, capacity * sizeof *grown);
        if (grown == NULL) {
            /* Out of memory: leaking one handle is better than freeing it under a running kernel. */
            pthread_mutex_unlock(&queue_lock);
            return;
        }
        queue = grown;
        queue_capacity = capacity;
    }
    queue[queue_length++] = (struct pending_handle){ handle, sweeps_completed, kind };
    pthread_mutex_unlock(&queue_lock);
    atomic_fetch_add(&queued_total, 1);
}

/* The disposers TorchSharp's finalizers call; every other symbol comes from libLibTorchSharp.so. */
EXPORT void THSTorch_dispose_scalar(void *scalar) { dispose_or_queue(KIND_SCALAR, scalar); }
EXPORT void THSTensor_dispose(void *tensor) { dispose_or_queue(KIND_TENSOR, tensor); }
EXPORT void THSGenerator_dispose(void *generator) { dispose_or_queue(KIND_GENERATOR, generator); }

/* Called from a finalizer (FinalizerGuard's sentinel): from now on this thread only queues. */
EXPORT void prefonline_guard_mark_finalizer_thread(void)
{
    is_finalizer_thread = 1;
    atomic_store(&finalizer_thread_marked, 1);
    pthread_once(&reaper_once, start_reaper);
}

EXPORT int prefonline_guard_finalizer_thread_marked(void) { return atomic_load(&finalizer_thread_marked); }

/* NULL when every real disposer was found, else one line saying which was not. */
EXPORT const char *prefonline_guard_load_error(void) { return load_error[0] ? load_error : NULL; }

EXPORT uint64_t prefonline_guard_queued(void) { return atomic_load(&queued_total); }
EXPORT uint64_t prefonline_guard_freed_from_queue(void) { return atomic_load(&freed_from_queue_total); }
EXPORT uint64_t prefonline_guard_freed_directly(void) { return atomic_load(&freed_directly_total); }

EXPORT uint64_t prefonline_guard_pending(void)
{
    pthread_mutex_lock(&queue_lock);
    uint64_t pending = queue_length;
    pthread_mutex_unlock(&queue_lock);
    return pending;
}

/* 1 when handle waits in the queue (tests). */
EXPORT int prefonline_guard_is_pending(void *handle)
{
    int found = 0;
    pthread_mutex_lock(&queue_lock);
    for (size_t i = 0; i < queue_length && !found; i++) found = queue[i].handle == handle;
    pthread_mutex_unlock(&queue_lock);
    return found;
}

/* One sweep now, as the reaper does every second (tests of the grace rule). Returns how many it freed. */
EXPORT uint64_t prefonline_guard_sweep(void) { return sweep(0, 0); }

/* Frees every queued handle now, whatever its age. Only when no thread can be inside a TorchSharp call. */
EXPORT uint64_t prefonline_guard_drain(void) { return sweep(1, 0); }

/* 0 pauses the reaper's sweeps (tests that sweep by hand), 1 resumes them. */
EXPORT void prefonline_guard_set_automatic_sweeps(int enabled)
{
    pthread_mutex_lock(&queue_lock);
    automatic_sweeps = enabled != 0;
    pthread_mutex_unlock(&queue_lock);
}

/* Diagnostic only: 1 makes the finalizer thread free at once, as unguarded TorchSharp does. */
EXPORT void prefonline_guard_set_passthrough(int enabled) { atomic_store(&passthrough, enabled != 0); }
