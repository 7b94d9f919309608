/* sample-postoffice.c - sample postoffices, by hand and by mkpo. */
#include "sample-postoffice.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>

#include "glb.h"
#include "mailbag.h"
#include "tool-run.h"

static void write_zeros(const char *dir, const char *relpath, gsize size)
{
        g_autofree char *path = g_build_filename(dir, relpath, NULL);
        g_autofree char *zeros = g_malloc0(size + 1);
        g_autoptr(GError) error = NULL;
        cr_assert(g_file_set_contents(path, zeros, (gssize)size, &error), "%s",
                  error ? error->message : path);
}

void harness_make_mailbag(const char *dir, const char *name)
{
        g_autofree char *key = g_strdup_printf("KEY/%s.KEY", name);
        g_autofree char *mbg = g_strdup_printf("MBG/%s.MBG", name);
        write_zeros(dir, key, PO_MAILBAG_KEY_SIZE);
        write_zeros(dir, mbg, 0);
}

void harness_make_postoffice(const char *dir)
{
        static const char *const folders[] = {"P1", "KEY", "MBG", "GLB"};
        for (size_t i = 0; i < G_N_ELEMENTS(folders); i++) {
                g_autofree char *path = g_build_filename(dir, folders[i], NULL);
                cr_assert_eq(g_mkdir_with_parents(path, 0755), 0, "mkdir %s: %s", path,
                             g_strerror(errno));
        }
        harness_make_mailbag(dir, "INQUEUE3");
        write_zeros(dir, "GLB/CONTROL.GLB", PO_GLB_CONTROL_SIZE);
        write_zeros(dir, "GLB/ACCESS.GLB", PO_GLB_ACCESS_RECORD_SIZE);
}

void harness_mkpo(const char *dir, unsigned users, unsigned messages)
{
        g_autofree char *users_arg = g_strdup_printf("%u", users);
        g_autofree char *messages_arg = g_strdup_printf("%u", messages);
        g_auto(ToolRun) run = {0};
        tool_run(&run, "MKPO", dir, "--users", users_arg, "--messages", messages_arg,
                 "--queue-max", messages_arg, NULL);
        cr_assert_eq(run.status, 0, "mkpo %s failed: %s", dir, run.err);
}
