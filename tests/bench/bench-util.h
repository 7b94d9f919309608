/* bench-util.h - the clock and the error exit of the benchmark workloads. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The name the workload gives itself in its messages. */
extern const char *const bench_program;

static inline double bench_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A failed call ends the run: a benchmark that goes on after an error
 * measures something else. */
static inline void bench_die(const char *what, const char *path)
{
        fprintf(stderr, "%s: %s %s: %s\n", bench_program, what, path, strerror(errno));
        exit(1);
}
