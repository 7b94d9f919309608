/* fuzz-glb.c - libFuzzer target: CONTROL.GLB, ACCESS*.GLB, .NME and the GLB
 * size table on any bytes. */
#include "glb.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        PoControl control;
        po_glb_control_parse(data, size, "C", &control, NULL);
        if (size >= 4) {
                /* Two bytes each give the ACCESS2/ACCESS3 lengths. */
                size_t len2 = data[0] | data[1] << 8, len3 = data[2] << 4 | data[3] << 12;
                unsigned users = 0;
                po_glb_access_check(data + 4, size - 4, len2, len3, &users, NULL);
                char alias[PO_GLB_ACCESS_ALIAS_SIZE + 1];
                for (unsigned u = 0; u <= (size - 4) / PO_GLB_ACCESS_RECORD_SIZE; u++)
                        po_glb_access_alias(data + 4, size - 4, u, alias, NULL);
        }
        unsigned count = 0;
        if (po_glb_nme_count(size, "N", &count, NULL)) {
                PoNmeEntry entry;
                for (unsigned i = 0; i <= count; i++)
                        po_glb_nme_entry(data, size, i, &entry, NULL);
        }
        static const char *const names[] = { "CONTROL.GLB", "NETPO.GLB", "GROUP.GLB", "NETWORK.GLB" };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                po_glb_check_size(names[i], size, names[i], NULL);
        if (size == PO_GLB_CONTROL_SIZE) {
                uint8_t copy[PO_GLB_CONTROL_SIZE];
                memcpy(copy, data, sizeof copy);
                uint32_t number;
                po_glb_control_take_message_number(copy, sizeof copy, "C", &number, NULL);
        }
        return 0;
}
