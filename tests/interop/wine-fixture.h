/* wine-fixture.h - Win32 test programs under Debian's wine, in two
 * separate WINEPREFIXes.
 *
 * Wine enforces share modes only among the programs of one prefix (one
 * wineserver), so two prefixes behave like two unrelated machines: exactly
 * the situation of two MTAs on one postoffice. Creating a prefix takes
 * seconds, so wine_prefixes_prepare() makes both once per test program
 * (from main(), before the tests run) and publishes them to the tests in
 * the environment; wine_prefixes_remove() stops their wineservers and
 * deletes them.
 */
#pragma once

#include <stdbool.h>

#include "interop-util.h"

#define WINE_PREFIXES 2

/* Makes the prefixes; on failure records the reason for the tests. */
void wine_prefixes_prepare(void);
void wine_prefixes_remove(void);

/* NULL when wine can run here, else why not (for cr_skip_test). */
const char *wine_unavailable_reason(void);

/* Starts mbhold.exe in prefix @prefix (0 or 1) and waits until it
 * answers. 0 or -errno; *error_text says why (caller frees). */
int wine_peer_start(InteropPeer *peer, int prefix, const char *name, const char *log_dir, char **error_text);

/* Stops the wineserver of every prefix, and with it every Wine process of
 * the prefix, so nothing keeps files open on a mount that is about to go. */
void wine_stop_servers(void);

/* The Win32 spelling of a Unix path on Wine's Z: drive (caller frees). */
char *wine_path(const char *unix_path);
