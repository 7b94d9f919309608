/* mailbag.c - .KEY bitmap arithmetic, .MBG records, and their files.
 *
 * Invariants kept here: a PoMailbag's total never exceeds 4096; the .KEY
 * header (first 48 bytes, inferred) is copied, never interpreted; bitmap
 * bits at or past total are counted (they mean the two files disagree) but
 * never used to pick a slot; the record checksum is never touched.
 */
#include "mailbag.h"
#include "naming.h"
#include "po-error.h"
#include "po-file.h"
#include "profile-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint16_t mailbag_get_le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static void mailbag_put_le16(uint8_t *p, uint16_t v)
{
        p[0] = v & 0xFF;
        p[1] = v >> 8;
}

/* Copies a NUL-padded field of @size bytes into @out (size + 1 bytes). */
static void mailbag_get_text(const uint8_t *field, gsize size, char *out)
{
        gsize n = 0;
        while (n < size && field[n] != '\0')
                n++;
        memcpy(out, field, n);
        out[n] = '\0';
}

static void mailbag_put_text(uint8_t *field, gsize size, const char *text)
{
        gsize n = strnlen(text, size);
        memset(field, 0, size);
        memcpy(field, text, n);
}

void po_record_decode(const uint8_t *record, PoRecord *out)
{
        memset(out, 0, sizeof *out);
        mailbag_get_text(record + PO_RECORD_SENDER_OFFSET, PO_RECORD_SENDER_SIZE, out->sender);
        mailbag_get_text(record + PO_RECORD_SUBJECT_OFFSET, PO_RECORD_SUBJECT_SIZE, out->subject);
        const uint8_t *date = record + PO_RECORD_DATE_OFFSET;
        out->minute = mailbag_get_le16(date);
        out->hour = mailbag_get_le16(date + 2);
        out->day = mailbag_get_le16(date + 4);
        out->month = mailbag_get_le16(date + 6);
        out->year = mailbag_get_le16(date + 8);
        mailbag_get_text(record + PO_RECORD_MAI_OFFSET, PO_RECORD_MAI_SIZE - 1, out->mai_name);
        out->has_message_number = po_naming_parse_number(out->mai_name, strlen(out->mai_name),
                                                         &out->message_number);
}

void po_record_encode(uint8_t *record, const PoRecord *in)
{
        mailbag_put_text(record + PO_RECORD_SENDER_OFFSET, PO_RECORD_SENDER_SIZE, in->sender);
        mailbag_put_text(record + PO_RECORD_SUBJECT_OFFSET, PO_RECORD_SUBJECT_SIZE, in->subject);
        uint8_t *date = record + PO_RECORD_DATE_OFFSET;
        mailbag_put_le16(date, in->minute);
        mailbag_put_le16(date + 2, in->hour);
        mailbag_put_le16(date + 4, in->day);
        mailbag_put_le16(date + 6, in->month);
        mailbag_put_le16(date + 8, in->year);
        char mai[PO_NAMING_MAILBAG_MAX];
        if (in->has_message_number)
                po_naming_mailbag_name(in->message_number, mai);
        else
                g_strlcpy(mai, in->mai_name, sizeof mai);
        mailbag_put_text(record + PO_RECORD_MAI_OFFSET, PO_RECORD_MAI_SIZE, mai);
}

bool po_mailbag_check_key_size(gsize key_len, const char *key_name, GError **error)
{
        if (key_len == PO_MAILBAG_KEY_SIZE)
                return true;
        po_format_set_corrupt(error, key_name, MIN(key_len, (gsize)PO_MAILBAG_KEY_SIZE),
                              "a %d-byte .KEY file, found %" G_GSIZE_FORMAT " bytes",
                              PO_MAILBAG_KEY_SIZE, key_len);
        return false;
}

bool po_mailbag_check_mbg_size(gsize mbg_len, const char *mbg_name, GError **error)
{
        if (mbg_len > PO_MAILBAG_MBG_MAX_SIZE) {
                po_format_set_corrupt(error, mbg_name, PO_MAILBAG_MBG_MAX_SIZE,
                                      "at most %d records (%d bytes), found %" G_GSIZE_FORMAT " bytes",
                                      PO_MAILBAG_MAX_RECORDS, PO_MAILBAG_MBG_MAX_SIZE, mbg_len);
                return false;
        }
        if (mbg_len % PO_MAILBAG_RECORD_SIZE != 0) {
                po_format_set_corrupt(error, mbg_name,
                                      mbg_len - mbg_len % PO_MAILBAG_RECORD_SIZE,
                                      "a whole %d-byte record, found %" G_GSIZE_FORMAT " bytes",
                                      PO_MAILBAG_RECORD_SIZE, mbg_len % PO_MAILBAG_RECORD_SIZE);
                return false;
        }
        return true;
}

bool po_mailbag_key_slot_is_free(const uint8_t *key, unsigned slot)
{
        if (slot >= PO_MAILBAG_MAX_RECORDS)
                return false;
        return key[PO_MAILBAG_KEY_HEADER_SIZE + slot / 8] & (0x80 >> (slot % 8));
}

void po_mailbag_key_set_slot_free(uint8_t *key, unsigned slot, bool is_free)
{
        if (slot >= PO_MAILBAG_MAX_RECORDS)
                return;
        uint8_t *byte = &key[PO_MAILBAG_KEY_HEADER_SIZE + slot / 8];
        uint8_t mask = 0x80 >> (slot % 8);
        *byte = is_free ? (*byte | mask) : (*byte & ~mask);
}

int po_mailbag_key_first_free(const uint8_t *key, unsigned total)
{
        total = MIN(total, (unsigned)PO_MAILBAG_MAX_RECORDS);
        const uint8_t *bitmap = key + PO_MAILBAG_KEY_HEADER_SIZE;
        for (unsigned byte = 0; byte * 8 < total; byte++) {
                if (bitmap[byte] == 0)
                        continue;
                for (unsigned bit = 0; bit < 8; bit++) {
                        unsigned slot = byte * 8 + bit;
                        if (slot < total && (bitmap[byte] & (0x80 >> bit)))
                                return (int)slot;
                }
        }
        return -1;
}

void po_mailbag_key_stats(const uint8_t *key, unsigned total, PoMailbagStats *out)
{
        memset(out, 0, sizeof *out);
        out->total = total;
        for (unsigned slot = 0; slot < PO_MAILBAG_MAX_RECORDS; slot++) {
                if (!po_mailbag_key_slot_is_free(key, slot))
                        continue;
                if (slot < total)
                        out->free++;
                else
                        out->free_beyond_total++;
        }
        out->live = total - out->free;
        out->percent = out->live * 100 / PO_MAILBAG_MAX_RECORDS;
}

int po_mailbag_key_slot_for_append(const uint8_t *key, unsigned total)
{
        int slot = po_mailbag_key_first_free(key, total);
        if (slot >= 0)
                return slot;
        return total < PO_MAILBAG_MAX_RECORDS ? (int)total : -1;
}

static void mailbag_set_full(GError **error, unsigned total)
{
        g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_FULL,
                    "mailbag full: %u of %d records in use and no free slot",
                    total, PO_MAILBAG_MAX_RECORDS);
}

/* Record storage is sized by a rule, not stored: 16 slots, else the next
 * power of two, so appending one record at a time stays linear. */
static unsigned mailbag_capacity(unsigned total)
{
        unsigned capacity = 16;
        while (capacity < total)
                capacity *= 2;
        return capacity;
}

PoMailbag *po_mailbag_new(void)
{
        PoMailbag *mailbag = g_new0(PoMailbag, 1);
        mailbag->records = g_malloc0((gsize)mailbag_capacity(0) * PO_MAILBAG_RECORD_SIZE);
        return mailbag;
}

PoMailbag *po_mailbag_parse(const uint8_t *key, gsize key_len, const uint8_t *mbg,
                            gsize mbg_len, const char *key_name, const char *mbg_name,
                            GError **error)
{
        if (!po_mailbag_check_key_size(key_len, key_name, error) ||
            !po_mailbag_check_mbg_size(mbg_len, mbg_name, error))
                return NULL;
        PoMailbag *mailbag = g_new0(PoMailbag, 1);
        memcpy(mailbag->key, key, PO_MAILBAG_KEY_SIZE);
        mailbag->total = mbg_len / PO_MAILBAG_RECORD_SIZE;
        mailbag->records = g_malloc((gsize)mailbag_capacity(mailbag->total) *
                                    PO_MAILBAG_RECORD_SIZE);
        if (mbg_len > 0)
                memcpy(mailbag->records, mbg, mbg_len);
        return mailbag;
}

void po_mailbag_free(PoMailbag *mailbag)
{
        if (mailbag == NULL)
                return;
        g_free(mailbag->records);
        g_free(mailbag);
}

void po_mailbag_stats(const PoMailbag *mailbag, PoMailbagStats *out)
{
        po_mailbag_key_stats(mailbag->key, mailbag->total, out);
}

int po_mailbag_append(PoMailbag *mailbag, const uint8_t *record, GError **error)
{
        int slot = po_mailbag_key_slot_for_append(mailbag->key, mailbag->total);
        if (slot < 0) {
                mailbag_set_full(error, mailbag->total);
                return -1;
        }
        if ((unsigned)slot == mailbag->total) {
                if (mailbag_capacity(mailbag->total) == mailbag->total)
                        mailbag->records = g_realloc(mailbag->records,
                                                     (gsize)mailbag_capacity(mailbag->total + 1) *
                                                     PO_MAILBAG_RECORD_SIZE);
                mailbag->total++;
        }
        memcpy(mailbag->records + (gsize)slot * PO_MAILBAG_RECORD_SIZE, record,
               PO_MAILBAG_RECORD_SIZE);
        po_mailbag_key_set_slot_free(mailbag->key, slot, false);
        return slot;
}

bool po_mailbag_delete(PoMailbag *mailbag, unsigned slot, GError **error)
{
        if (slot >= mailbag->total || po_mailbag_key_slot_is_free(mailbag->key, slot)) {
                g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE,
                            "slot %u is not a live record (mailbag has %u slots)",
                            slot, mailbag->total);
                return false;
        }
        po_mailbag_key_set_slot_free(mailbag->key, slot, true);
        return true;
}

int po_mailbag_next_live(const PoMailbag *mailbag, int after)
{
        for (unsigned slot = after < 0 ? 0 : (unsigned)after + 1; slot < mailbag->total; slot++)
                if (!po_mailbag_key_slot_is_free(mailbag->key, slot))
                        return (int)slot;
        return -1;
}

const uint8_t *po_mailbag_record(const PoMailbag *mailbag, unsigned slot)
{
        if (slot >= mailbag->total)
                return NULL;
        return mailbag->records + (gsize)slot * PO_MAILBAG_RECORD_SIZE;
}

PoMailbag *po_mailbag_load_fds(int key_fd, int mbg_fd, const char *key_name,
                               const char *mbg_name, GError **error)
{
        g_autofree guint8 *key = NULL, *mbg = NULL;
        gsize key_len = 0, mbg_len = 0;
        if (!po_file_read_fd(key_fd, PO_MAILBAG_KEY_SIZE, key_name, &key, &key_len, error) ||
            !po_file_read_fd(mbg_fd, PO_MAILBAG_MBG_MAX_SIZE, mbg_name, &mbg, &mbg_len, error))
                return NULL;
        return po_mailbag_parse(key, key_len, mbg, mbg_len, key_name, mbg_name, error);
}

static void mailbag_paths(const char *root, const char *name, char **key_path, char **mbg_path)
{
        g_autofree char *key_rel = po_paths_key(name);
        g_autofree char *mbg_rel = po_paths_mbg(name);
        *key_path = g_build_filename(root, key_rel, NULL);
        *mbg_path = g_build_filename(root, mbg_rel, NULL);
}

PoMailbag *po_mailbag_load(const char *root, const char *name, GError **error)
{
        g_autofree char *key_path = NULL, *mbg_path = NULL;
        mailbag_paths(root, name, &key_path, &mbg_path);
        g_autofree guint8 *key = NULL, *mbg = NULL;
        gsize key_len = 0, mbg_len = 0;
        if (!po_file_read(key_path, PO_MAILBAG_KEY_SIZE, &key, &key_len, error) ||
            !po_file_read(mbg_path, PO_MAILBAG_MBG_MAX_SIZE, &mbg, &mbg_len, error))
                return NULL;
        return po_mailbag_parse(key, key_len, mbg, mbg_len, key_path, mbg_path, error);
}

bool po_mailbag_save(const PoMailbag *mailbag, const char *root, const char *name,
                     GError **error)
{
        g_autofree char *key_path = NULL, *mbg_path = NULL;
        mailbag_paths(root, name, &key_path, &mbg_path);
        return po_file_write(mbg_path, mailbag->records,
                             (gsize)mailbag->total * PO_MAILBAG_RECORD_SIZE, error) &&
               po_file_write(key_path, mailbag->key, PO_MAILBAG_KEY_SIZE, error);
}

/* Reads the .KEY and the slot count of the .MBG from open files. */
static bool mailbag_read_fds(int key_fd, int mbg_fd, const char *key_name, const char *mbg_name,
                             uint8_t key[PO_MAILBAG_KEY_SIZE], unsigned *total, GError **error)
{
        struct stat st;
        if (fstat(key_fd, &st) < 0) {
                po_format_set_io(error, key_name, errno, "stat");
                return false;
        }
        if (!po_mailbag_check_key_size(st.st_size, key_name, error))
                return false;
        if (fstat(mbg_fd, &st) < 0) {
                po_format_set_io(error, mbg_name, errno, "stat");
                return false;
        }
        if (!po_mailbag_check_mbg_size(st.st_size, mbg_name, error))
                return false;
        *total = st.st_size / PO_MAILBAG_RECORD_SIZE;
        return po_file_pread_exact(key_fd, key, PO_MAILBAG_KEY_SIZE, 0, key_name, error);
}

int po_mailbag_append_fds(int key_fd, int mbg_fd, const uint8_t *record,
                          const char *key_name, const char *mbg_name, GError **error)
{
        uint8_t key[PO_MAILBAG_KEY_SIZE];
        unsigned total;
        if (!mailbag_read_fds(key_fd, mbg_fd, key_name, mbg_name, key, &total, error))
                return -1;
        int slot = po_mailbag_key_slot_for_append(key, total);
        if (slot < 0) {
                mailbag_set_full(error, total);
                return -1;
        }
        if (!po_file_pwrite_all(mbg_fd, record, PO_MAILBAG_RECORD_SIZE,
                                (goffset)slot * PO_MAILBAG_RECORD_SIZE, mbg_name, error))
                return -1;
        po_mailbag_key_set_slot_free(key, slot, false);
        if (!po_file_pwrite_all(key_fd, key, PO_MAILBAG_KEY_SIZE, 0, key_name, error))
                return -1;
        return slot;
}

bool po_mailbag_delete_fds(int key_fd, int mbg_fd, unsigned slot, const char *key_name,
                           const char *mbg_name, GError **error)
{
        uint8_t key[PO_MAILBAG_KEY_SIZE];
        unsigned total;
        if (!mailbag_read_fds(key_fd, mbg_fd, key_name, mbg_name, key, &total, error))
                return false;
        if (slot >= total || po_mailbag_key_slot_is_free(key, slot)) {
                g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE,
                            "%s: slot %u is not a live record (%u slots)", mbg_name, slot, total);
                return false;
        }
        po_mailbag_key_set_slot_free(key, slot, true);
        return po_file_pwrite_all(key_fd, key, PO_MAILBAG_KEY_SIZE, 0, key_name, error);
}
