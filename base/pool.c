/* pool.c - the thread pool of pool.h: one generation counter per parallel loop, an atomic task
 * counter, and condition variables for start and finish. */
#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct px_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start_cv, done_cv;
    uint64_t generation; /* bumped for every loop; workers wait for a change */
    int shutting_down;
    int busy; /* helper threads still inside the current loop */
    /* the current loop */
    px_task_fn fn;
    void *ctx;
    size_t n_tasks;
    atomic_size_t next;
};

typedef struct {
    px_pool *pool;
    int index;
} px__thread_arg;

static void px__drain(px_pool *p, int thread)
{
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *px__thread_main(void *arg)
{
    px__thread_arg a = *(px__thread_arg *)arg;
    free(arg);
    px_pool *p = a.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->generation == seen && !p->shutting_down)
            pthread_cond_wait(&p->start_cv, &p->mu);
        if (p->shutting_down) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        px__drain(p, a.index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

px_status px_pool_create(px_pool **out, int n_threads)
{
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    px_pool *p = calloc(1, sizeof *p);
    if (!p) return px_error(PX_ENOMEM, "thread pool: cannot allocate");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            free(p);
            return px_error(PX_ENOMEM, "thread pool: cannot allocate");
        }
        for (int i = 1; i < n_threads; i++) {
            px__thread_arg *a = malloc(sizeof *a);
            if (!a) {
                p->n_threads = i;
                px_pool_destroy(p);
                return px_error(PX_ENOMEM, "thread pool: cannot allocate");
            }
            a->pool = p;
            a->index = i;
            if (pthread_create(&p->threads[i - 1], NULL, px__thread_main, a) != 0) {
                free(a);
                p->n_threads = i;
                px_pool_destroy(p);
                return px_error(PX_ERUNTIME, "thread pool: cannot start thread %d of %d", i + 1,
                                n_threads);
            }
        }
    }
    *out = p;
    return PX_OK;
}

void px_pool_destroy(px_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->shutting_down = 1;
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

int px_pool_size(const px_pool *p)
{
    return p ? p->n_threads : 1;
}

void px_pool_run(px_pool *p, size_t n_tasks, px_task_fn fn, void *ctx)
{
    if (n_tasks == 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);

    px__drain(p, 0);

    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int px_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
