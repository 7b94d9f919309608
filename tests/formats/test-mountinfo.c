/* test-mountinfo.c - formats/mountinfo.c on text: every field of a line,
 * escapes, and lines it must refuse. */
#include <criterion/criterion.h>
#include <glib.h>
#include <sys/sysmacros.h>

#include "mountinfo.h"
#include "po-error.h"

Test(mountinfo, every_field_of_a_line_is_read)
{
        static const char text[] =
                "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
                "\n"
                "45 22 0:44 / /srv/gl\\040one rw,relatime - fuse.glusterfs 127.0.0.2:mail "
                "rw,user_id=0,group_id=0,default_permissions,allow_other,max_read=131072\n"
                "47 22 0:44 /po /srv/po\\134b rw master:3 propagation:x - fuse.glusterfs "
                "127.0.0.2:mail rw\n";
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) mounts = po_mounts_parse(text, &error);
        cr_assert_not_null(mounts, "%s", error->message);
        cr_assert_eq(mounts->len, 3);

        const PoMount *gluster = po_mounts_find_id(mounts, 45);
        cr_assert_not_null(gluster);
        cr_expect_eq(gluster->dev, makedev(0, 44));
        cr_expect_str_eq(gluster->root, "/");
        cr_expect_str_eq(gluster->mount_point, "/srv/gl one");
        cr_expect_str_eq(gluster->fstype, "fuse.glusterfs");
        cr_expect_str_eq(gluster->source, "127.0.0.2:mail");
        cr_expect(g_str_has_prefix(gluster->super_options, "rw,user_id=0"));

        const PoMount *bound = mounts->pdata[2];
        cr_expect_eq(bound->id, 47);
        cr_expect_str_eq(bound->root, "/po");
        cr_expect_str_eq(bound->mount_point, "/srv/po\\b");
        cr_expect_eq(bound->dev, gluster->dev);
        cr_expect_null(po_mounts_find_id(mounts, 46));
}

Test(mountinfo, lines_without_their_fields_are_refused)
{
        static const char *const bad[] = {
                "22 1 8:1 / / rw,relatime - ext4\n",         /* no source */
                "22 1 8:1 / / rw,relatime ext4 /dev/sda1\n", /* no separator */
                "x 1 8:1 / / rw - ext4 /dev/sda1 rw\n",      /* no id */
                "22 1 8-1 / / rw - ext4 /dev/sda1 rw\n",     /* no MAJ:MIN */
                "22 1 8: / / rw - ext4 /dev/sda1 rw\n",
        };
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GPtrArray) mounts = po_mounts_parse(bad[i], &error);
                cr_expect_null(mounts, "accepted: %s", bad[i]);
                cr_expect(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT));
                cr_expect(error && strstr(error->message, "line 1"), "%s", bad[i]);
        }
}

Test(mountinfo, a_path_is_on_the_deepest_mount_above_it_and_the_last_on_one_point)
{
        static const char text[] = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                                   "45 22 0:44 / /srv rw - tmpfs none rw\n"
                                   "46 45 0:45 / /srv/mail rw - fuse.glusterfs gl:mail rw\n"
                                   "47 46 0:46 / /srv/mail rw - fuse.mailbagfs /srv/raw rw\n";
        g_autoptr(GPtrArray) mounts = po_mounts_parse(text, NULL);
        cr_assert_not_null(mounts);
        cr_expect_eq(po_mounts_of_path(mounts, "/srv/mail/PO1")->id, 47);
        cr_expect_eq(po_mounts_of_path(mounts, "/srv/mail")->id, 47);
        cr_expect_eq(po_mounts_of_path(mounts, "/srv/mailbox")->id, 45);
        cr_expect_eq(po_mounts_of_path(mounts, "/etc")->id, 22);
        cr_expect(po_mounts_path_within("/srv/mail/x", "/srv/mail"));
        cr_expect(!po_mounts_path_within("/srv/mailx", "/srv/mail"));
        cr_expect(po_mounts_path_within("/anything", "/"));
}
