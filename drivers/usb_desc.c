/*
 * What the descriptors of a USB device say, for the scanner driver and rmactl's
 * listing (drivers/usb_internal.h): where the device sits, and which of its HID
 * interfaces could carry scans.
 */
#include "drivers/usb_internal.h"

#include <stdio.h>
#include <string.h>

char *usb_port_path(libusb_device *dev)
{
    uint8_t ports[8];
    int n = libusb_get_port_numbers(dev, ports, sizeof(ports));
    char buf[64];
    size_t len = (size_t)snprintf(buf, sizeof(buf), "%u-", libusb_get_bus_number(dev));
    if (n <= 0)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "0");
    for (int i = 0; i < n && len < sizeof(buf); i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, i ? ".%u" : "%u", ports[i]);
    return strdup(buf);
}

/* The HID descriptor's report descriptor length, or 0. */
static uint16_t hid_rdesc_len(const unsigned char *x, int len)
{
    for (int i = 0; i + 2 <= len && x[i] >= 2; i += x[i]) {
        if (x[i + 1] != HID_DT_HID || x[i] < 9 || i + x[i] > len)
            continue;
        int ndesc = x[i + 5];
        for (int k = 0; k < ndesc && 6 + 3 * k + 2 < x[i]; k++)
            if (x[i + 6 + 3 * k] == HID_DT_REPORT)
                return (uint16_t)(x[i + 7 + 3 * k] | x[i + 8 + 3 * k] << 8);
    }
    return 0;
}

int usb_hid_ifaces(libusb_device *dev, usb_hid_iface_t *cand, size_t *ncand)
{
    struct libusb_config_descriptor *cfg;
    int rc = libusb_get_active_config_descriptor(dev, &cfg);
    if (rc < 0)
        return rc;
    *ncand = 0;
    for (int i = 0; i < cfg->bNumInterfaces && *ncand < USB_MAX_IFACES; i++) {
        if (cfg->interface[i].num_altsetting < 1)
            continue;
        const struct libusb_interface_descriptor *alt = &cfg->interface[i].altsetting[0];
        if (alt->bInterfaceClass != LIBUSB_CLASS_HID)
            continue;
        for (int e = 0; e < alt->bNumEndpoints; e++) {
            const struct libusb_endpoint_descriptor *ep = &alt->endpoint[e];
            if ((ep->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_INTERRUPT ||
                !(ep->bEndpointAddress & LIBUSB_ENDPOINT_IN))
                continue;
            cand[(*ncand)++] = (usb_hid_iface_t){
                .ifnum = alt->bInterfaceNumber,
                .ep = ep->bEndpointAddress,
                .mps = (uint16_t)(ep->wMaxPacketSize & 0x7FF),
                .rdesc_len = hid_rdesc_len(alt->extra, alt->extra_length),
                .boot_kbd = alt->bInterfaceSubClass == 1 && alt->bInterfaceProtocol == 1,
            };
            break;
        }
    }
    libusb_free_config_descriptor(cfg);
    return 0;
}
