/* tool-run.c - spawn a program, wait for it, keep what it said. */
#include "tool-run.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <sys/wait.h>

void tool_run_clear(ToolRun *run)
{
        g_clear_pointer(&run->out, g_free);
        g_clear_pointer(&run->err, g_free);
}

const char *tool_path(const char *variable)
{
        const char *path = g_getenv(variable);
        cr_assert(path && *path, "%s is not set (run the tests through meson test)", variable);
        return path;
}

void tool_runv(ToolRun *run, const char *variable, const char *const *args)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_ptr_array_add(argv, (gpointer)tool_path(variable));
        for (const char *const *arg = args; arg && *arg; arg++)
                g_ptr_array_add(argv, (gpointer)*arg);
        g_ptr_array_add(argv, NULL);

        int wait_status = 0;
        g_autoptr(GError) error = NULL;
        cr_assert(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &run->out, &run->err, &wait_status, &error),
                  "cannot run %s: %s", (char *)argv->pdata[0], error ? error->message : "?");
        run->status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

void tool_run(ToolRun *run, const char *variable, ...)
{
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        va_list list;
        va_start(list, variable);
        const char *arg;
        while ((arg = va_arg(list, const char *)) != NULL)
                g_ptr_array_add(args, (gpointer)arg);
        va_end(list);
        g_ptr_array_add(args, NULL);
        tool_runv(run, variable, (const char *const *)args->pdata);
}
