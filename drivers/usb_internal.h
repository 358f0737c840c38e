/*
 * What the USB driver's files share (drivers/usb.c, the scanner; drivers/usb_list.c,
 * rmactl's listing), implemented in drivers/usb_desc.c. Not an interface for other
 * modules: they use drivers/scanner.h and drivers/usb.h.
 */
#ifndef RMAD_USB_INTERNAL_H
#define RMAD_USB_INTERNAL_H

#include <libusb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* HID descriptor types (HID 1.11, 7.1). */
#define HID_DT_HID 0x21
#define HID_DT_REPORT 0x22

/* HID interfaces considered per device. */
#define USB_MAX_IFACES 8

/* A HID interface that can send reports: one that might carry scans. */
typedef struct {
    uint8_t ifnum;
    uint8_t ep;             /* its interrupt IN endpoint */
    uint16_t mps;           /* that endpoint's wMaxPacketSize */
    uint16_t rdesc_len;     /* report descriptor length in its HID descriptor; 0 = none */
    bool boot_kbd;          /* subclass 1 (boot), protocol 1 (keyboard) */
} usb_hid_iface_t;

/*
 * The device's bus-port path, "1-4.2" (bus 1, port 4, then port 2 of the hub there),
 * as Linux names it in /sys/bus/usb/devices. Malloc'd (caller frees); NULL when out of
 * memory. No I/O: libusb knows the topology.
 */
char *usb_port_path(libusb_device *dev);

/*
 * The HID interfaces of dev's active configuration that have an interrupt IN
 * endpoint (first alternate setting, at most USB_MAX_IFACES), into out[0..*n). No
 * I/O on Linux (descriptors are cached from sysfs). Returns 0 or a libusb error.
 */
int usb_hid_ifaces(libusb_device *dev, usb_hid_iface_t *out, size_t *n);

#endif
