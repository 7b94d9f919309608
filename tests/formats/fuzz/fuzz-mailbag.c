/* fuzz-mailbag.c - libFuzzer target: a .KEY/.MBG pair from any bytes, then
 * every operation the daemon performs on a parsed mailbag. */
#include "mailbag.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* First byte picks a .KEY length near 560 so that both the size
         * checks and the bitmap logic are reached. */
        if (size < 1)
                return 0;
        size_t key_len = 556 + data[0] % 8;
        data++;
        size--;
        if (key_len > size)
                key_len = size;
        g_autoptr(GError) error = NULL;
        g_autoptr(PoMailbag) mailbag = po_mailbag_parse(data, key_len, data + key_len,
                                                        size - key_len, "K", "M", &error);
        if (mailbag == NULL)
                return 0;
        PoMailbagStats stats;
        po_mailbag_stats(mailbag, &stats);
        if (stats.live + stats.free != stats.total)
                __builtin_trap();
        for (int s = po_mailbag_next_live(mailbag, -1); s >= 0; s = po_mailbag_next_live(mailbag, s)) {
                PoRecord record;
                po_record_decode(po_mailbag_record(mailbag, s), &record);
                uint8_t copy[PO_MAILBAG_RECORD_SIZE];
                po_record_encode(copy, &record);
        }
        uint8_t record[PO_MAILBAG_RECORD_SIZE] = { 0 };
        int slot = po_mailbag_append(mailbag, record, NULL);
        if (slot >= 0 && !po_mailbag_delete(mailbag, slot, NULL))
                __builtin_trap();
        return 0;
}
