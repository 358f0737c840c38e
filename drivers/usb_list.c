/*
 * The attached HID devices, for `rmactl scanners` (drivers/usb.h): a synchronous walk
 * of the bus with libusb, outside any loop. It reads what it can without disturbing
 * anybody: string descriptors when the device opens, report descriptors from Linux's
 * copy in sysfs or, when no driver holds the interface, from the device; it never
 * detaches a driver, and claims an interface only for that one read.
 */
#include "drivers/usb.h"

#include <dirent.h>
#include <errno.h>
#include <libusb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/hidpos.h"
#include "drivers/usb_internal.h"

const char *usb_hid_kind_name(usb_hid_kind_t kind)
{
    switch (kind) {
    case USB_HID_KEYBOARD:
        return "keyboard";
    case USB_HID_POS:
        return "hid-pos";
    case USB_HID_OTHER:
        return "hid";
    default:
        return "hid (unknown)";
    }
}

void usb_hid_list_free(usb_hid_info_t *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++) {
        free(list[i].path);
        free(list[i].manufacturer);
        free(list[i].product);
        free(list[i].serial);
        free(list[i].note);
    }
    free(list);
}

/* A string descriptor: NULL for index 0, the text, or a placeholder saying why not. */
static int list_string(libusb_device_handle *h, int open_rc, uint8_t index, char **out)
{
    *out = NULL;
    if (index == 0)
        return 0;
    unsigned char buf[256];
    const char *text;
    int rc = h ? libusb_get_string_descriptor_ascii(h, index, buf, sizeof(buf)) : open_rc;
    if (rc >= 0) {
        buf[rc] = '\0';
        text = (const char *)buf;
    } else {
        text = rc == LIBUSB_ERROR_ACCESS ? "(no permission)" : "(unreadable)";
    }
    return (*out = strdup(text)) ? 0 : -ENOMEM;
}

/*
 * Linux's copy of an interface's report descriptor, which it keeps while a HID driver
 * is bound: /sys/bus/usb/devices/PATH:CONFIG.IFACE/<hid device>/report_descriptor.
 * Returns 0 with *len set, or -ENOENT when there is none.
 */
static int sysfs_rdesc(const char *path, uint8_t config, uint8_t ifnum, uint8_t *buf,
                       size_t size, size_t *len)
{
    char *dir = NULL;
    if (asprintf(&dir, "/sys/bus/usb/devices/%s:%u.%u", path, config, ifnum) < 0)
        return -ENOMEM;
    DIR *d = opendir(dir);
    int rc = -ENOENT;
    struct dirent *de;
    while (d && rc == -ENOENT && (de = readdir(d))) {
        char *file = NULL;
        /* HID devices are named BUS:VENDOR:PRODUCT.N, "0003:0C2E:0B6A.0001". */
        if (!strchr(de->d_name, ':') || !strchr(de->d_name, '.'))
            continue;
        if (asprintf(&file, "%s/%s/report_descriptor", dir, de->d_name) < 0) {
            rc = -ENOMEM;
            break;
        }
        FILE *f = fopen(file, "rb");
        free(file);
        if (!f)
            continue;
        *len = fread(buf, 1, size, f);
        rc = ferror(f) ? -EIO : 0;
        (void)fclose(f);
    }
    if (d)
        (void)closedir(d);
    free(dir);
    return rc;
}

/*
 * What a non-boot HID interface is: its report descriptor from sysfs, or from the
 * device when no kernel driver holds it. Returns the kind; *note says why for UNKNOWN.
 */
static usb_hid_kind_t list_probe(libusb_device_handle *h, int open_rc, const char *path,
                                 uint8_t config, const usb_hid_iface_t *k, const char **note)
{
    uint8_t desc[HIDPOS_DESC_MAX];
    size_t len = 0;
    hidpos_layout_t lay;
    *note = NULL;
    if (sysfs_rdesc(path, config, k->ifnum, desc, sizeof(desc), &len) < 0) {
        if (!h) {
            *note = open_rc == LIBUSB_ERROR_ACCESS ? "no permission" : libusb_strerror(open_rc);
            return USB_HID_UNKNOWN;
        }
        if (libusb_kernel_driver_active(h, k->ifnum) == 1 || k->rdesc_len == 0) {
            *note = "report descriptor not available";
            return USB_HID_UNKNOWN;
        }
        int rc = libusb_claim_interface(h, k->ifnum);
        if (rc < 0) {
            *note = rc == LIBUSB_ERROR_BUSY ? "interface in use" : libusb_strerror(rc);
            return USB_HID_UNKNOWN;
        }
        rc = libusb_control_transfer(h, LIBUSB_ENDPOINT_IN | LIBUSB_RECIPIENT_INTERFACE,
                                     LIBUSB_REQUEST_GET_DESCRIPTOR, HID_DT_REPORT << 8, k->ifnum,
                                     desc, k->rdesc_len, 1000);
        (void)libusb_release_interface(h, k->ifnum);
        if (rc < 0) {
            *note = libusb_strerror(rc);
            return USB_HID_UNKNOWN;
        }
        len = (size_t)rc;
    }
    return hidpos_parse(desc, len, &lay, NULL) == 0 ? USB_HID_POS : USB_HID_OTHER;
}

/* Fill *info for dev; returns 1 when it is a HID device, 0 when not, or -errno. */
static int list_one(libusb_device *dev, usb_hid_info_t *info)
{
    struct libusb_device_descriptor dd;
    struct libusb_config_descriptor *cfg;
    usb_hid_iface_t cand[USB_MAX_IFACES];
    size_t ncand = 0;
    bool hid = false;
    if (libusb_get_device_descriptor(dev, &dd) < 0 ||
        libusb_get_active_config_descriptor(dev, &cfg) < 0)
        return 0;  /* unconfigured or unreadable: nothing rmad could read either */
    uint8_t config = cfg->bConfigurationValue;
    for (int i = 0; i < cfg->bNumInterfaces; i++)
        for (int a = 0; a < cfg->interface[i].num_altsetting; a++)
            hid = hid || cfg->interface[i].altsetting[a].bInterfaceClass == LIBUSB_CLASS_HID;
    libusb_free_config_descriptor(cfg);
    if (!hid || usb_hid_ifaces(dev, cand, &ncand) < 0)
        return 0;

    *info = (usb_hid_info_t){ .vid = dd.idVendor, .pid = dd.idProduct,
                              .bus = libusb_get_bus_number(dev), .kind = USB_HID_OTHER };
    if (!(info->path = usb_port_path(dev)))
        return -ENOMEM;
    libusb_device_handle *h = NULL;
    int open_rc = libusb_open(dev, &h);
    if (open_rc < 0)
        h = NULL;
    int rc = 0;
    if (list_string(h, open_rc, dd.iManufacturer, &info->manufacturer) < 0 ||
        list_string(h, open_rc, dd.iProduct, &info->product) < 0 ||
        list_string(h, open_rc, dd.iSerialNumber, &info->serial) < 0)
        rc = -ENOMEM;
    /* HID POS wins (rmad reads it first), then boot keyboard; unreadable ones say why. */
    bool kbd = false, pos = false;
    const char *note = NULL;
    for (size_t i = 0; rc == 0 && i < ncand && !pos; i++) {
        if (cand[i].boot_kbd) {
            kbd = true;
            continue;
        }
        const char *why;
        usb_hid_kind_t k = list_probe(h, open_rc, info->path, config, &cand[i], &why);
        pos = k == USB_HID_POS;
        if (k == USB_HID_UNKNOWN && !note)
            note = why;
    }
    info->kind = pos ? USB_HID_POS : kbd ? USB_HID_KEYBOARD : note ? USB_HID_UNKNOWN
                                                                  : USB_HID_OTHER;
    if (rc == 0 && !pos && note && !(info->note = strdup(note)))
        rc = -ENOMEM;
    if (h)
        libusb_close(h);
    return rc < 0 ? rc : 1;
}

/* Bus, then path ("1-4.2" before "1-10"): compared as numbers, field by field. */
static int cmp_info(const void *a, const void *b)
{
    const usb_hid_info_t *x = a, *y = b;
    if (x->bus != y->bus)
        return x->bus < y->bus ? -1 : 1;
    const char *p = strchr(x->path, '-'), *q = strchr(y->path, '-');
    while (p && q && *p && *q) {
        unsigned long m = strtoul(p + 1, (char **)&p, 10), n = strtoul(q + 1, (char **)&q, 10);
        if (m != n)
            return m < n ? -1 : 1;
    }
    return (p && *p) - (q && *q);
}

int usb_list_hid(usb_hid_info_t **out, size_t *n)
{
    libusb_context *lu;
    if (libusb_init(&lu) < 0)
        return -EIO;
    libusb_device **devs;
    ssize_t ndev = libusb_get_device_list(lu, &devs);
    if (ndev < 0) {
        libusb_exit(lu);
        return ndev == LIBUSB_ERROR_NO_MEM ? -ENOMEM : -EIO;
    }
    usb_hid_info_t *list = calloc((size_t)ndev + 1, sizeof(*list));
    size_t count = 0;
    int rc = list ? 0 : -ENOMEM;
    for (ssize_t i = 0; rc == 0 && i < ndev; i++) {
        int r = list_one(devs[i], &list[count]);
        if (r > 0)
            count++;
        else if (r < 0)
            rc = r, count++;  /* free its partial entry with the others */
    }
    libusb_free_device_list(devs, 1);
    libusb_exit(lu);
    if (rc < 0) {
        usb_hid_list_free(list, count);
        return rc;
    }
    qsort(list, count, sizeof(*list), cmp_info);
    *out = list;
    *n = count;
    return 0;
}
