/* test_device.c - the device interface (base/device.h): the CPU backend's memory, copies,
 * streams and events, the refusals (a backend the build lacks, a device that does not exist),
 * and, where the machine has a GPU, the same round trips on the CUDA backend. On a machine
 * without one, the CUDA backend must refuse with PX_ENOTSUP and a message that says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/device.h"

/* The round trip every backend must pass: host -> device -> device -> host on a stream, with a
 * zeroed region in the middle, an event between two streams, and timing. */
static void round_trip(px_device_kind kind)
{
    px_device *d = NULL;
    assert_int_equal(px_device_open(&d, kind, 0), PX_OK);
    assert_int_equal(px_device_kind_of(d), kind);
    assert_true(strlen(px_device_name(d)) > 0);
    assert_int_equal(px_device_bind_thread(d), PX_OK);

    enum { N = 4099 }; /* not a multiple of any vector width */
    float *host = NULL, *back = NULL, *a = NULL, *b = NULL;
    assert_int_equal(px_device_alloc_host(d, N * sizeof(float), (void **)&host), PX_OK);
    assert_int_equal(px_device_alloc_host(d, N * sizeof(float), (void **)&back), PX_OK);
    assert_int_equal(px_device_alloc(d, N * sizeof(float), (void **)&a), PX_OK);
    assert_int_equal(px_device_alloc(d, N * sizeof(float), (void **)&b), PX_OK);
    for (int i = 0; i < N; i++)
        host[i] = (float)i * 0.25f - 7.0f;

    px_stream *s1 = NULL, *s2 = NULL;
    px_event *e0 = NULL, *e1 = NULL, *e2 = NULL;
    assert_int_equal(px_stream_create(d, &s1), PX_OK);
    assert_int_equal(px_stream_create(d, &s2), PX_OK);
    assert_int_equal(px_event_create(d, &e0), PX_OK);
    assert_int_equal(px_event_create(d, &e1), PX_OK);
    assert_int_equal(px_event_create(d, &e2), PX_OK);
    assert_true(kind == PX_DEVICE_CPU ? px_stream_native(s1) == NULL : px_stream_native(s1) != NULL);

    /* s1: upload, zero 100 values in the middle; s2 waits for that, then copies a -> b and
     * downloads b */
    assert_int_equal(px_event_record(e0, s1), PX_OK);
    assert_int_equal(px_device_copy(d, a, host, N * sizeof(float), PX_COPY_H2D, s1), PX_OK);
    assert_int_equal(px_device_zero(d, a + 1000, 100 * sizeof(float), s1), PX_OK);
    assert_int_equal(px_event_record(e1, s1), PX_OK);
    assert_int_equal(px_stream_wait_event(s2, e1), PX_OK);
    assert_int_equal(px_device_copy(d, b, a, N * sizeof(float), PX_COPY_D2D, s2), PX_OK);
    assert_int_equal(px_device_copy(d, back, b, N * sizeof(float), PX_COPY_D2H, s2), PX_OK);
    assert_int_equal(px_event_record(e2, s2), PX_OK);
    assert_int_equal(px_event_sync(e2), PX_OK);
    assert_int_equal(px_stream_sync(s2), PX_OK);
    for (int i = 0; i < N; i++)
        assert_true(back[i] == (i >= 1000 && i < 1100 ? 0.0f : host[i]));

    float ms = -1.0f;
    assert_int_equal(px_event_elapsed_ms(e0, e2, &ms), PX_OK);
    assert_true(ms >= 0.0f && ms < 60000.0f);

    /* zero-byte operations are allowed and do nothing */
    assert_int_equal(px_device_copy(d, back, b, 0, PX_COPY_D2H, NULL), PX_OK);
    assert_int_equal(px_device_zero(d, a, 0, NULL), PX_OK);
    void *empty = NULL;
    assert_int_equal(px_device_alloc(d, 0, &empty), PX_OK);
    assert_non_null(empty);
    px_device_free(d, empty);
    /* the default stream (NULL) */
    assert_int_equal(px_device_copy(d, a, host, N * sizeof(float), PX_COPY_H2D, NULL), PX_OK);
    assert_int_equal(px_device_copy(d, back, a, N * sizeof(float), PX_COPY_D2H, NULL), PX_OK);
    assert_int_equal(px_device_sync(d), PX_OK);
    assert_memory_equal(back, host, N * sizeof(float));

    px_event_destroy(e0);
    px_event_destroy(e1);
    px_event_destroy(e2);
    px_stream_destroy(s1);
    px_stream_destroy(s2);
    px_device_free(d, a);
    px_device_free(d, b);
    px_device_free_host(d, host);
    px_device_free_host(d, back);
    px_device_free(d, NULL); /* allowed, as free(NULL) */
    px_device_close(d);
    px_device_close(NULL);
}

static void test_cpu_round_trip(void **state)
{
    (void)state;
    assert_true(px_device_built(PX_DEVICE_CPU));
    int n = 0;
    assert_int_equal(px_device_count(PX_DEVICE_CPU, &n), PX_OK);
    assert_int_equal(n, 1);
    round_trip(PX_DEVICE_CPU);
}

/* The CPU backend runs each operation when it is called: an event recorded after some work
 * times that work. */
static void test_cpu_event_times(void **state)
{
    (void)state;
    px_device *d;
    assert_int_equal(px_device_open(&d, PX_DEVICE_CPU, 0), PX_OK);
    px_event *a, *b, *never;
    assert_int_equal(px_event_create(d, &a), PX_OK);
    assert_int_equal(px_event_create(d, &b), PX_OK);
    assert_int_equal(px_event_create(d, &never), PX_OK);
    assert_int_equal(px_event_record(a, NULL), PX_OK);
    px_sleep_us(20000);
    assert_int_equal(px_event_record(b, NULL), PX_OK);
    float ms;
    assert_int_equal(px_event_elapsed_ms(a, b, &ms), PX_OK);
    assert_true(ms >= 19.0f && ms < 5000.0f);
    /* an event never recorded cannot be timed */
    assert_int_equal(px_event_elapsed_ms(a, never, &ms), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "never recorded"));
    px_event_destroy(a);
    px_event_destroy(b);
    px_event_destroy(never);
    px_device_close(d);
}

static void test_refusals(void **state)
{
    (void)state;
    px_device *d = (px_device *)0x1;
    /* a CPU other than number 0 does not exist */
    assert_int_equal(px_device_open(&d, PX_DEVICE_CPU, 1), PX_EINVAL);
    assert_null(d);
    assert_non_null(strstr(px_errmsg(), "cpu:1 does not exist"));
    /* a kind outside the table */
    int n = 7;
    assert_int_equal(px_device_count((px_device_kind)9, &n), PX_ENOTSUP);
    assert_int_equal(n, 0);
    assert_false(px_device_built((px_device_kind)9));
    assert_string_equal(px_device_kind_name(PX_DEVICE_CUDA), "cuda");
}

/* CUDA: where this build lacks it or the machine has no GPU, a clear refusal (PX_ENOTSUP, a
 * message naming the reason) and nothing opened; where a GPU exists, the round trip. */
static void test_cuda(void **state)
{
    (void)state;
    int n = -1;
    px_status st = px_device_count(PX_DEVICE_CUDA, &n);
#ifdef PX_HAVE_CUDA
    assert_true(px_device_built(PX_DEVICE_CUDA));
#else
    assert_false(px_device_built(PX_DEVICE_CUDA));
    assert_int_equal(st, PX_ENOTSUP);
    assert_non_null(strstr(px_errmsg(), "this build has no cuda support"));
#endif
    if (st == PX_OK) {
        assert_true(n >= 1);
        printf("test_device: CUDA round trip on %d device(s)\n", n);
        round_trip(PX_DEVICE_CUDA);
        return;
    }
    assert_int_equal(st, PX_ENOTSUP);
    assert_int_equal(n, 0);
    printf("test_device: no CUDA device, refusal checked: %s\n", px_errmsg());
    px_device *d = (px_device *)0x1;
    assert_int_equal(px_device_open(&d, PX_DEVICE_CUDA, 0), PX_ENOTSUP);
    assert_null(d);
    assert_true(strstr(px_errmsg(), "no usable CUDA device") ||
                strstr(px_errmsg(), "no cuda support"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_round_trip),
        cmocka_unit_test(test_cpu_event_times),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cuda),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
