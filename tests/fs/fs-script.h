/* fs-script.h - one fixed sequence of file operations that writes a
 * transcript of every result and errno, so the same script run on a raw
 * directory and through a mount can be compared line for line. */
#pragma once

#include <glib.h>

/* Runs the script under @root (an empty directory). @other_fs is a
 * directory on another filesystem, for EXDEV, or NULL. Returns the
 * transcript (caller frees). */
char *fs_script_run(const char *root, const char *other_fs);
