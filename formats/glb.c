/* glb.c - CONTROL.GLB counters, ACCESS*.GLB consistency, .NME records and
 * the GLB size table. Readers never trust a length: every access is checked
 * against the buffer, every failure names the file and the offset. */
#include "glb.h"
#include "po-error.h"
#include "po-file.h"

#include <string.h>

static uint32_t glb_get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
               (uint32_t)p[3] << 24;
}

static void glb_put_le32(uint8_t *p, uint32_t v)
{
        p[0] = v & 0xFF;
        p[1] = (v >> 8) & 0xFF;
        p[2] = (v >> 16) & 0xFF;
        p[3] = v >> 24;
}

bool po_glb_control_parse(const uint8_t *data, gsize len, const char *name,
                          PoControl *out, GError **error)
{
        if (len != PO_GLB_CONTROL_SIZE) {
                po_format_set_corrupt(error, name, MIN(len, (gsize)PO_GLB_CONTROL_SIZE),
                                      "an %d-byte CONTROL.GLB, found %" G_GSIZE_FORMAT " bytes",
                                      PO_GLB_CONTROL_SIZE, len);
                return false;
        }
        out->next_mailbag = glb_get_le32(data);
        out->next_message = glb_get_le32(data + 4);
        return true;
}

void po_glb_control_write(uint8_t out[PO_GLB_CONTROL_SIZE], const PoControl *control)
{
        glb_put_le32(out, control->next_mailbag);
        glb_put_le32(out + 4, control->next_message);
}

static bool glb_control_take(uint8_t *data, gsize len, const char *name, gsize offset,
                             uint32_t *number, GError **error)
{
        PoControl control;
        if (!po_glb_control_parse(data, len, name, &control, error))
                return false;
        uint32_t value = glb_get_le32(data + offset);
        if (value == UINT32_MAX) {
                g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE,
                            "%s: offset 0x%" G_GSIZE_MODIFIER "x: counter exhausted (0xFFFFFFFF)",
                            name ? name : "(buffer)", offset);
                return false;
        }
        glb_put_le32(data + offset, value + 1);
        *number = value;
        return true;
}

bool po_glb_control_take_message_number(uint8_t *data, gsize len, const char *name,
                                        uint32_t *number, GError **error)
{
        return glb_control_take(data, len, name, 4, number, error);
}

bool po_glb_control_take_mailbag_number(uint8_t *data, gsize len, const char *name,
                                        uint32_t *number, GError **error)
{
        return glb_control_take(data, len, name, 0, number, error);
}

bool po_glb_control_take_message_number_fd(int fd, const char *name, uint32_t *number,
                                           GError **error)
{
        g_autofree guint8 *data = NULL;
        gsize len = 0;
        if (!po_file_read_fd(fd, PO_GLB_CONTROL_SIZE, name, &data, &len, error) ||
            !po_glb_control_take_message_number(data, len, name, number, error))
                return false;
        return po_file_pwrite_all(fd, data, len, 0, name, error);
}

gsize po_glb_access_record_size(PoGlbAccessFile which)
{
        switch (which) {
        case PO_GLB_ACCESS: return PO_GLB_ACCESS_RECORD_SIZE;
        case PO_GLB_ACCESS2: return PO_GLB_ACCESS2_RECORD_SIZE;
        case PO_GLB_ACCESS3: return PO_GLB_ACCESS3_RECORD_SIZE;
        }
        return PO_GLB_ACCESS_RECORD_SIZE;
}

static bool glb_count_records(gsize len, gsize record_size, gsize header, const char *name,
                              unsigned *count, GError **error)
{
        if (len < header || (len - header) % record_size != 0) {
                gsize whole = len < header ? 0 : header + (len - header) / record_size * record_size;
                if (header == 0)
                        po_format_set_corrupt(error, name, whole,
                                              "whole %" G_GSIZE_FORMAT "-byte records, found %"
                                              G_GSIZE_FORMAT " bytes in all", record_size, len);
                else
                        po_format_set_corrupt(error, name, whole,
                                              "a %" G_GSIZE_FORMAT "-byte header and whole %"
                                              G_GSIZE_FORMAT "-byte records, found %" G_GSIZE_FORMAT
                                              " bytes in all", header, record_size, len);
                return false;
        }
        *count = (len - header) / record_size;
        return true;
}

bool po_glb_access_count(PoGlbAccessFile which, gsize len, const char *name,
                         unsigned *count, GError **error)
{
        return glb_count_records(len, po_glb_access_record_size(which), 0, name, count, error);
}

PoGlbAliasStatus po_glb_access_alias(const uint8_t *access, gsize len, unsigned index,
                                     char out[PO_GLB_ACCESS_ALIAS_SIZE + 1],
                                     gsize *bad_offset)
{
        out[0] = '\0';
        gsize start = (gsize)index * PO_GLB_ACCESS_RECORD_SIZE + PO_GLB_ACCESS_ALIAS_OFFSET;
        if (start + PO_GLB_ACCESS_ALIAS_SIZE > len)
                return PO_GLB_ALIAS_EMPTY;
        const uint8_t *alias = access + start;
        if (alias[0] == '\0')
                return PO_GLB_ALIAS_EMPTY;
        PoGlbAliasStatus status = PO_GLB_ALIAS_OK;
        gsize n = 0;
        for (; n < PO_GLB_ACCESS_ALIAS_SIZE && alias[n] != '\0'; n++) {
                bool printable = alias[n] >= 0x20 && alias[n] < 0x7F;
                if (!printable && status == PO_GLB_ALIAS_OK) {
                        status = PO_GLB_ALIAS_UNPRINTABLE;
                        if (bad_offset)
                                *bad_offset = start + n;
                }
                out[n] = printable ? (char)alias[n] : '?';
        }
        out[n] = '\0';
        return status;
}

bool po_glb_access_check(const uint8_t *access, gsize access_len,
                         gsize access2_len, gsize access3_len,
                         unsigned *n_users, GError **error)
{
        unsigned counts[3];
        const char *names[3] = { "ACCESS.GLB", "ACCESS2.GLB", "ACCESS3.GLB" };
        const gsize lens[3] = { access_len, access2_len, access3_len };
        for (int i = 0; i < 3; i++)
                if (!po_glb_access_count((PoGlbAccessFile)i, lens[i], names[i], &counts[i], error))
                        return false;
        for (int i = 1; i < 3; i++) {
                if (counts[i] != counts[0]) {
                        gsize size = po_glb_access_record_size((PoGlbAccessFile)i);
                        po_format_set_corrupt(error, names[i], MIN(counts[i], counts[0]) * size,
                                              "%u records as in ACCESS.GLB, found %u",
                                              counts[0], counts[i]);
                        return false;
                }
        }
        for (unsigned u = 0; u < counts[0]; u++) {
                char alias[PO_GLB_ACCESS_ALIAS_SIZE + 1];
                gsize bad = 0;
                if (po_glb_access_alias(access, access_len, u, alias, &bad) ==
                    PO_GLB_ALIAS_UNPRINTABLE) {
                        po_format_set_corrupt(error, names[0], bad,
                                              "a printable alias in record %u, found \"%s\"",
                                              u, alias);
                        return false;
                }
        }
        if (n_users)
                *n_users = counts[0];
        return true;
}

void po_glb_access_record_init(uint8_t record[PO_GLB_ACCESS_RECORD_SIZE], const char *alias)
{
        memset(record, 0, PO_GLB_ACCESS_RECORD_SIZE);
        for (gsize i = 0; i < PO_GLB_ACCESS_ALIAS_SIZE && alias[i]; i++)
                record[PO_GLB_ACCESS_ALIAS_OFFSET + i] = g_ascii_toupper(alias[i]);
}

/* .NME field offsets (inferred; Q107767 names the fields, not their place). */
#define GLB_NME_ALIAS_OFFSET 0x00  /* alias, NUL padded, 11 bytes */
#define GLB_NME_TID_OFFSET 0x0B    /* u32 LE */
#define GLB_NME_TYPE_OFFSET 0x0F   /* u8: 2 external, 4 group */
#define GLB_NME_OFFSET_OFFSET 0x10 /* u32 LE */

bool po_glb_nme_count(gsize len, const char *name, unsigned *count, GError **error)
{
        return glb_count_records(len, PO_GLB_NME_RECORD_SIZE, 0, name, count, error);
}

bool po_glb_nme_entry(const uint8_t *data, gsize len, unsigned index, PoNmeEntry *out,
                      GError **error)
{
        gsize start = (gsize)index * PO_GLB_NME_RECORD_SIZE;
        if (start + PO_GLB_NME_RECORD_SIZE > len) {
                g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE,
                            "record %u is past the end (%" G_GSIZE_FORMAT " bytes)", index, len);
                return false;
        }
        const uint8_t *record = data + start;
        memset(out, 0, sizeof *out);
        for (gsize i = 0; i < PO_GLB_NME_ALIAS_SIZE && record[GLB_NME_ALIAS_OFFSET + i]; i++)
                out->alias[i] = (char)record[GLB_NME_ALIAS_OFFSET + i];
        out->tid = glb_get_le32(record + GLB_NME_TID_OFFSET);
        out->type = record[GLB_NME_TYPE_OFFSET];
        out->offset = glb_get_le32(record + GLB_NME_OFFSET_OFFSET);
        return true;
}

void po_glb_nme_entry_write(uint8_t record[PO_GLB_NME_RECORD_SIZE], const PoNmeEntry *entry)
{
        memset(record, 0, PO_GLB_NME_RECORD_SIZE);
        memcpy(record + GLB_NME_ALIAS_OFFSET, entry->alias,
               strnlen(entry->alias, PO_GLB_NME_ALIAS_SIZE));
        glb_put_le32(record + GLB_NME_TID_OFFSET, entry->tid);
        record[GLB_NME_TYPE_OFFSET] = entry->type;
        glb_put_le32(record + GLB_NME_OFFSET_OFFSET, entry->offset);
}

typedef struct {
        const char *name;
        gsize header;      /* fixed part */
        gsize record_size; /* 0: a fixed-size file */
} GlbSizeRule;

/* D, Q77926, Q87402, Q87465. */
static const GlbSizeRule glb_size_rules[] = {
        { "CONTROL.GLB", 8, 0 },
        { "FLAG.GLB", 2, 0 },
        { "GLOBAL.GLB", 512, 0 },
        { "MASTER.GLB", 176, 0 },
        { "TID.GLB", 4, 0 },
        { "NETPO.GLB", 4, 43 },
        { "GROUP.GLB", 4, 51 },
        { "NETWORK.GLB", 0, 122 },
        { "ACCESS.GLB", 0, PO_GLB_ACCESS_RECORD_SIZE },
        { "ACCESS2.GLB", 0, PO_GLB_ACCESS2_RECORD_SIZE },
        { "ACCESS3.GLB", 0, PO_GLB_ACCESS3_RECORD_SIZE },
};

static const GlbSizeRule *glb_size_rule(const char *basename)
{
        for (gsize i = 0; i < G_N_ELEMENTS(glb_size_rules); i++)
                if (g_ascii_strcasecmp(glb_size_rules[i].name, basename) == 0)
                        return &glb_size_rules[i];
        return NULL;
}

bool po_glb_check_size(const char *basename, gsize size, const char *name, GError **error)
{
        const GlbSizeRule *rule = glb_size_rule(basename);
        if (rule == NULL)
                return true;
        if (rule->record_size == 0) {
                if (size == rule->header)
                        return true;
                po_format_set_corrupt(error, name, MIN(size, rule->header),
                                      "%" G_GSIZE_FORMAT " bytes, found %" G_GSIZE_FORMAT,
                                      rule->header, size);
                return false;
        }
        unsigned count;
        return glb_count_records(size, rule->record_size, rule->header, name, &count, error);
}

gssize po_glb_fresh_size(const char *basename)
{
        const GlbSizeRule *rule = glb_size_rule(basename);
        return rule ? (gssize)rule->header : -1;
}
