/* tool-run.h - runs one of the tree's programs as a test's user would and
 * keeps its exit status and output. The program's path comes from an
 * environment variable that meson sets for the test (MAILBAGFS, MKPO,
 * PO_CHECK, PO_SIM...). */
#pragma once

#include <glib.h>

typedef struct {
        int status; /* exit code, or -1 when killed by a signal */
        char *out;
        char *err;
} ToolRun;

void tool_run_clear(ToolRun *run);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ToolRun, tool_run_clear)

/* The path in environment @variable; fails the test when it is unset. */
const char *tool_path(const char *variable);

/* Runs the program named by @variable with the arguments that follow, up
 * to a NULL. Fails the test when the program cannot be started. */
void tool_run(ToolRun *run, const char *variable, ...) G_GNUC_NULL_TERMINATED;

/* The same with the arguments in a NULL-terminated array. */
void tool_runv(ToolRun *run, const char *variable, const char *const *args);
