/* samba-fixture.c - a private smbd on loopback for one test. */
#include "samba-fixture.h"

#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mount-harness.h"
#include "interop-util.h"

/* Why each line is there: README-interop.md, "Samba". */
const char samba_postoffice_share_options[] =
        "read only = no\n"
        "oplocks = no\n"
        "level2 oplocks = no\n"
        "kernel oplocks = no\n"
        "kernel share modes = no\n"
        "posix locking = yes\n"
        "strict locking = yes\n"
        "case sensitive = yes\n"
        "default case = upper\n"
        "preserve case = no\n"
        "short preserve case = no\n"
        "mangled names = no\n";

static char *samba_indent(const char *lines)
{
        g_auto(GStrv) split = g_strsplit(lines, "\n", -1);
        GString *out = g_string_new(NULL);
        for (char **line = split; *line; line++)
                if (**line)
                        g_string_append_printf(out, "\t%s\n", *line);
        return g_string_free(out, FALSE);
}

static char *samba_config_text(const SambaFixture *s, const SambaShare *shares)
{
        GString *conf = g_string_new(NULL);
        g_string_append_printf(
                conf,
                "[global]\n"
                "\tserver role = standalone server\n"
                /* Loopback only, on a port of our own: never the machine's
                 * network, never a privileged port. */
                "\tinterfaces = 127.0.0.1\n"
                "\tbind interfaces only = yes\n"
                "\tsmb ports = %d\n"
                "\tdisable netbios = yes\n"
                /* Every piece of state inside the test's directory, so that
                 * a system smbd (if any) and other tests are untouched. */
                "\tprivate dir = %s/private\n"
                "\tlock directory = %s/lock\n"
                "\tstate directory = %s/state\n"
                "\tcache directory = %s/cache\n"
                "\tpid directory = %s/pid\n"
                "\tncalrpc dir = %s/ncalrpc\n"
                "\tbinddns dir = %s/binddns\n"
                "\tlog file = %s/log.%%m\n"
                "\tpassdb backend = tdbsam:%s/private/passdb.tdb\n"
                "\tmap to guest = never\n"
                "\tusershare path =\n"
                "\tload printers = no\n"
                "\tprinting = bsd\n"
                "\tprintcap name = /dev/null\n"
                "\tdisable spoolss = yes\n"
                /* The SMB1 torture suites (base.*, raw.*) need NT1. */
                "\tserver min protocol = NT1\n"
                /* On a sharing violation smbd waits up to a second for the
                 * holder to close, as Windows does; the deny-mode suites
                 * provoke hundreds of them. Both shares get the same
                 * setting, so outcomes stay comparable. */
                "\tdefer sharing violations = no\n",
                s->port, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir, s->dir);
        g_autofree char *options = samba_indent(samba_postoffice_share_options);
        for (const SambaShare *share = shares; share->name; share++)
                g_string_append_printf(conf, "\n[%s]\n\tpath = %s\n%s", share->name, share->path, options);
        return g_string_free(conf, FALSE);
}

static int samba_add_root(const SambaFixture *s, char **reason)
{
        const char *smbpasswd = getenv("SMBPASSWD");
        g_autofree char *input = g_strdup_printf("%s\n%s\n", s->password, s->password);
        g_autofree char *in_path = g_build_filename(s->dir, "password.in", NULL);
        if (!g_file_set_contents(in_path, input, -1, NULL))
                return -EIO;
        g_autofree char *command = g_strdup_printf("'%s' -c '%s' -a -s root < '%s' >> '%s' 2>&1", smbpasswd,
                                                   s->conf, in_path, s->log);
        int status = system(command);
        unlink(in_path);
        if (status != 0) {
                g_autofree char *tail = interop_file_tail(s->log, 1500);
                *reason = g_strdup_printf("smbpasswd could not add root to a private passdb: %s", tail);
                return -EIO;
        }
        return 0;
}

int samba_fixture_start(SambaFixture *s, const SambaShare *shares, char **reason)
{
        memset(s, 0, sizeof(*s));
        *reason = NULL;
        const char *smbd = getenv("SMBD");
        const char *smbpasswd = getenv("SMBPASSWD");
        if (!smbd || !*smbd || !smbpasswd || !*smbpasswd) {
                *reason = g_strdup("smbd or smbpasswd not found at build time (Debian package samba)");
                return -ENOENT;
        }

        g_autoptr(GError) error = NULL;
        s->dir = g_dir_make_tmp("mailbagfs-smbd-XXXXXX", &error);
        if (!s->dir) {
                *reason = g_strdup_printf("temporary directory: %s", error->message);
                return -EIO;
        }
        static const char *const subdirs[] = {"private", "lock", "state", "cache", "pid", "ncalrpc", "binddns"};
        for (size_t i = 0; i < G_N_ELEMENTS(subdirs); i++) {
                g_autofree char *sub = g_build_filename(s->dir, subdirs[i], NULL);
                mkdir(sub, 0700);
        }
        s->conf = g_build_filename(s->dir, "smb.conf", NULL);
        s->log = g_build_filename(s->dir, "smbd.log", NULL);
        s->password = g_strdup_printf("Pw-%08x%08x", g_random_int(), g_random_int());
        s->port = interop_free_port();
        if (s->port < 0) {
                *reason = g_strdup_printf("no free loopback port: %s", g_strerror(-s->port));
                samba_fixture_stop(s);
                return s->port;
        }

        g_autofree char *text = samba_config_text(s, shares);
        if (!g_file_set_contents(s->conf, text, -1, &error)) {
                *reason = g_strdup_printf("smb.conf: %s", error->message);
                samba_fixture_stop(s);
                return -EIO;
        }
        int r = samba_add_root(s, reason);
        if (r < 0) {
                samba_fixture_stop(s);
                return r;
        }

        /* --no-process-group keeps smbd in the group the helper made for
         * it; interop_end_descendants() reaps whatever it leaves. */
        const char *argv[] = {smbd, "--foreground", "--no-process-group", "--debug-stdout", "-d", "1",
                              "-s", s->conf, NULL};
        s->smbd = interop_spawn_logged(argv, NULL, s->log);
        if (s->smbd < 0) {
                *reason = g_strdup_printf("cannot start smbd: %s", g_strerror(-s->smbd));
                s->smbd = 0;
                samba_fixture_stop(s);
                return -EIO;
        }
        if (!interop_wait_for_port(s->port, s->smbd, INTEROP_START_TIMEOUT_MS)) {
                g_autofree char *tail = interop_file_tail(s->log, 2000);
                *reason = g_strdup_printf("smbd did not start listening on 127.0.0.1:%d: %s", s->port, tail);
                samba_fixture_stop(s);
                return -EIO;
        }
        return 0;
}

void samba_fixture_stop(SambaFixture *s)
{
        if (s->smbd > 0)
                interop_stop_pid(s->smbd, 10000);
        s->smbd = 0;
        if (s->dir)
                harness_remove_tree(s->dir);
        g_clear_pointer(&s->dir, g_free);
        g_clear_pointer(&s->conf, g_free);
        g_clear_pointer(&s->log, g_free);
        g_clear_pointer(&s->password, g_free);
}

char *samba_fixture_unc(const SambaFixture *s, const char *share)
{
        return g_strdup_printf("//127.0.0.1/%s", share);
}
