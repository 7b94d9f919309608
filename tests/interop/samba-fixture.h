/* samba-fixture.h - Debian's smbd serving test shares on loopback.
 *
 * samba_fixture_start() writes a private smb.conf into a temporary
 * directory (state, locks, passdb, logs, pid files: all inside it), adds
 * root with a random password to the private passdb, starts smbd in the
 * foreground on 127.0.0.1 and a free unprivileged port, and waits until it
 * accepts connections. samba_fixture_stop() stops smbd and its children
 * and removes the directory; it is safe at any stage, also twice.
 *
 * The shares get the share definition recommended for a postoffice on
 * mailbagfs (README-interop.md), so the tests exercise that definition.
 */
#pragma once

#include <sys/types.h>

typedef struct {
        char *dir;      /* private temporary directory */
        char *conf;     /* dir/smb.conf */
        char *log;      /* dir/smbd.log: smbd's own output */
        char *password; /* root's password in the private passdb */
        int port;
        pid_t smbd; /* 0 when not running */
} SambaFixture;

typedef struct {
        const char *name;
        const char *path;
} SambaShare;

/* The share parameters of the recommended definition, one per line. */
extern const char samba_postoffice_share_options[];

/* Starts smbd with @shares (terminated by a NULL name). 0 on success;
 * otherwise *reason says why smbd could not start on this machine
 * (caller frees) and the fixture is stopped. */
int samba_fixture_start(SambaFixture *s, const SambaShare *shares, char **reason);

void samba_fixture_stop(SambaFixture *s);

/* "//127.0.0.1/NAME" (caller frees). */
char *samba_fixture_unc(const SambaFixture *s, const char *share);
