/*
 * fuzz_fw_codec.c - libFuzzer target for the firmware's payload decoders (fw/fw_codec.h).
 *
 * Every input goes through both decoders that take bytes from the network:
 * fw_decode_item (backend -> device items) and fw_decode_inventory_reply. Besides what
 * ASan/UBSan catch, the target checks the decoders' promises on every accepted payload:
 * numbers in range, names NUL-terminated, non-empty and valid UTF-8, tags upper-case hex of
 * a 4, 7 or 10 byte UID; a rejection carries a reason. The input is copied into a buffer of
 * exactly its size so that any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_codec.h"

static void check(int ok)
{
    if (!ok)
        abort(); /* a broken promise: libFuzzer saves the input as a crash */
}

static void check_name(const char *name, size_t cap)
{
    size_t n = strnlen(name, cap);
    check(n > 0 && n < cap);
    check(fw_utf8_valid(name, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);

    struct fw_item item;
    int rc = fw_decode_item(copy, size, &item);
    check(rc >= 0);
    if (rc == FW_DECODE_OK) {
        check(size <= FW_INBOUND_MAX);
        check(item.item_id >= FW_ITEM_ID_MIN && item.item_id <= FW_ITEM_ID_MAX);
        check(item.tag_quantity >= FW_TAG_QUANTITY_MIN &&
              item.tag_quantity <= FW_TAG_QUANTITY_MAX);
        check_name(item.item_name, sizeof item.item_name);
        /* An accepted item must encode into a registration that fits the outbound size. */
        char out[512];
        struct fw_registration reg = {.item_id = item.item_id,
                                      .tag_quantity = item.tag_quantity,
                                      .tag_hex = "04A1B2C3",
                                      .device_id = "scanner-1",
                                      .seq = 1};
        check(fw_encode_registration(out, sizeof out, &reg) > 0);
    }

    struct fw_inventory_reply reply;
    rc = fw_decode_inventory_reply(copy, size, &reply);
    check(rc >= 0);
    if (rc == FW_DECODE_OK) {
        size_t n = strnlen(reply.tag, sizeof reply.tag);
        check(n == 8 || n == 14 || n == 20);
        for (size_t i = 0; i < n; i++)
            check((reply.tag[i] >= '0' && reply.tag[i] <= '9') ||
                  (reply.tag[i] >= 'A' && reply.tag[i] <= 'F'));
        if (reply.found) {
            check(reply.item_id >= FW_ITEM_ID_MIN);
            check_name(reply.item_name, sizeof reply.item_name);
        }
    }
    free(copy);
    return 0;
}
