/*
 * dash_items.c - the item form's action: publish through the backend role (dash.h).
 *
 * One device: that device's topic (per-device layout). All: in the per-device layout one
 * item for each device (each its own id, as the backend keys items by id); in the seed
 * layout one item on the shared topic, which every device receives (with several brokers,
 * one on each). Each item goes through the backend on its device's broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "fw/fw_codec.h"

/* The backend on the broker of the model's device `index` (< 0: the first). */
static struct hx_backend *dash__backend_of(const struct dash_backend_items *bi, int index)
{
    int n = 1 + bi->n_more;
    int k = index < 0 || n == 1 ? 0 : fleet_broker_of(bi->id_start + index, n);

    return k == 0 ? bi->backend : bi->more[k - 1];
}

static int dash__publish(struct dash_backend_items *bi, struct hx_backend *b, const char *device,
                         const struct dash_item_form *f, char *why, size_t cap)
{
    uint64_t k = atomic_fetch_add(&bi->created, 1) + 1;
    int32_t id = bi->id_base ? (int32_t)((uint64_t)bi->id_base + k) : hx_backend_next_item_id(b);

    if (id <= 0 || (bi->id_base && k > (uint64_t)(FW_ITEM_ID_MAX - bi->id_base)) ||
        hx_backend_publish_item(b, device, id, f->name, f->tag_quantity)) {
        atomic_fetch_sub(&bi->created, 1);
        snprintf(why, cap, "the backend refused the item: %s", hx_backend_last_error());
        return DASH_ERR_INVAL;
    }
    return DASH_OK;
}

/* In the per-device layout, "all": one item for each device. */
static int dash__publish_each(struct dash_backend_items *bi, const struct dash_item_form *f,
                              char *why, size_t cap)
{
    int n = dash_model_devices(bi->model), rc = DASH_OK;
    char (*ids)[FW_DEVICE_ID_MAX] = calloc(n > 0 ? (size_t)n : 1, sizeof(*ids));

    if (!ids) {
        snprintf(why, cap, "out of memory");
        return DASH_ERR_NOMEM;
    }
    if (n == 0) {
        snprintf(why, cap, "no devices are listed here (they run in worker processes): "
                 "name one device");
        rc = DASH_ERR_INVAL;
    }
    dash_model_device_ids(bi->model, ids, n);
    /* Every device or none: a device whose row has not come yet (a run's first second)
       would otherwise be skipped while the page is told the item went to all. */
    for (int i = 0; i < n && rc == DASH_OK; i++)
        if (!ids[i][0]) {
            snprintf(why, cap, "not every device is listed yet (their first figures come "
                     "within a second): try again");
            rc = DASH_ERR_INVAL;
        }
    for (int i = 0; i < n && rc == DASH_OK; i++)
        rc = dash__publish(bi, dash__backend_of(bi, i), ids[i], f, why, cap);
    free(ids);
    return rc;
}

int dash_backend_create_item(void *ctx, const struct dash_item_form *f, char *why, size_t cap)
{
    struct dash_backend_items *bi = ctx;

    if (!bi->per_device) {
        if (f->device[0]) {
            snprintf(why, cap, "device: the seed layout sends every item to every device; "
                     "choose all");
            return DASH_ERR_INVAL;
        }
        /* Every device gets it: on each broker, through that broker's backend. */
        int rc = DASH_OK;
        for (int k = 0; k <= bi->n_more && rc == DASH_OK; k++)
            rc = dash__publish(bi, k ? bi->more[k - 1] : bi->backend, NULL, f, why, cap);
        return rc;
    }
    if (!f->device[0])
        return dash__publish_each(bi, f, why, cap);
    int at = dash_model_devices(bi->model) > 0 ? dash_model_device_index(bi->model, f->device)
                                               : -1;
    if (dash_model_devices(bi->model) > 0 && at < 0) {
        snprintf(why, cap, "device: no device '%s' here", f->device);
        return DASH_ERR_INVAL;
    }
    return dash__publish(bi, dash__backend_of(bi, at), f->device, f, why, cap);
}
