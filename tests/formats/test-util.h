/* test-util.h - helpers shared by the formats test suites: a deterministic
 * random source (tests must be repeatable) and temporary directories that
 * are always removed. Header only; every function is static. */
#pragma once

#include <criterion/criterion.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

typedef struct {
        uint64_t state;
} TestRandom;

static inline uint64_t test_random_next(TestRandom *random)
{
        uint64_t z = (random->state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

static inline void test_random_fill(TestRandom *random, uint8_t *buf, gsize len)
{
        for (gsize i = 0; i < len; i++)
                buf[i] = (uint8_t)test_random_next(random);
}

static inline char *test_tmpdir(void)
{
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("po-test-XXXXXX", &error);
        cr_assert_not_null(dir, "mkdtemp: %s", error ? error->message : "?");
        return dir;
}

/* Removes @path and everything below it (read-only files included). */
static inline void test_rm_rf(const char *path)
{
        GDir *dir = g_dir_open(path, 0, NULL);
        if (dir != NULL) {
                const char *name;
                while ((name = g_dir_read_name(dir)) != NULL) {
                        g_autofree char *child = g_build_filename(path, name, NULL);
                        if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
                            !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                                test_rm_rf(child);
                        else
                                g_unlink(child);
                }
                g_dir_close(dir);
                g_rmdir(path);
        } else {
                g_unlink(path);
        }
}

static inline void test_write_file(const char *path, const void *data, gsize len)
{
        g_autoptr(GError) error = NULL;
        cr_assert(g_file_set_contents(path, data, len, &error), "%s: %s", path,
                  error ? error->message : "?");
}

/* A per-test scratch directory: set up by .init and removed by .fini, which
 * criterion runs also when an assertion fails (a cleanup attribute would be
 * skipped by the failure's longjmp). */
G_GNUC_UNUSED static char *test_scratch;

static inline void test_scratch_setup(void)
{
        test_scratch = test_tmpdir();
}

static inline void test_scratch_teardown(void)
{
        if (test_scratch)
                test_rm_rf(test_scratch);
        g_free(test_scratch);
        test_scratch = NULL;
}
