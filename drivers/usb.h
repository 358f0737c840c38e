/*
 * USB HID scanners: what the USB driver offers beyond scanner_new_usb() (declared in
 * drivers/scanner.h with the other drivers, implemented in drivers/usb.c), namely the
 * device names it reports and a listing of attached HID devices for `rmactl scanners`
 * (drivers/usb_list.c).
 *
 * Scanner ids. A usb scanner (`usb:VID:PID[:SERIAL]`) serves every attached device
 * that matches; each device is reported under its own id,
 *
 *     usb:0c2e:0b61@1-4.2
 *
 * VID:PID in lower-case hex as in the config, then '@' and the device's bus-port path
 * (bus 1, port 4 of the root hub, port 2 of the hub there), the name Linux gives it in
 * /sys/bus/usb/devices. Two identical scanners on one station therefore stay apart,
 * and a scanner keeps its id when it is replugged into the same port.
 *
 * How a device is read:
 * - An interface of class HID, subclass 1 (boot), protocol 1 (keyboard) is a
 *   keyboard-wedge scanner: it is switched to the boot protocol (SET_PROTOCOL), so
 *   its reports are the 8-byte boot-keyboard reports drivers/keymap.h decodes.
 * - Any other HID interface is a HID POS scanner when its report descriptor declares
 *   one (drivers/hidpos.h); its reports carry the AIM symbology id. A device with both
 *   is read through its HID POS interface.
 * - Otherwise the device is not a scanner: reported once (DISCONNECTED, with the
 *   reason) and left alone until it is replugged.
 * With the detach option (default yes) the kernel's HID driver is detached from the
 * interface first, and attached again when rmad lets the device go; with detach=no an
 * interface the kernel holds cannot be claimed, which is reported and retried.
 */
#ifndef RMAD_USB_H
#define RMAD_USB_H

#include <stddef.h>
#include <stdint.h>

/* What a HID device is, as far as rmad is concerned. */
typedef enum {
    USB_HID_KEYBOARD,   /* a boot-keyboard interface: a keyboard-wedge scanner, or a keyboard */
    USB_HID_POS,        /* a HID POS bar code scanner (usage page 0x8C) */
    USB_HID_OTHER,      /* HID, but neither (mouse, UPS, ...) */
    USB_HID_UNKNOWN,    /* HID whose report descriptor could not be read: note says why */
} usb_hid_kind_t;

/* One attached device with at least one HID interface. All strings owned by the list. */
typedef struct {
    uint16_t vid, pid;
    uint8_t bus;
    char *path;             /* bus-port path, "1-4.2" (as in scanner ids) */
    /*
     * String descriptors, ASCII (other characters as '?'): NULL when the device has
     * none; "(no permission)" when the device cannot be opened by this user;
     * "(unreadable)" when reading failed otherwise.
     */
    char *manufacturer, *product, *serial;
    usb_hid_kind_t kind;
    /*
     * Why the kind is uncertain: a HID interface whose report descriptor could not be
     * read ("no permission", "interface in use"), so it might be HID POS; else NULL.
     */
    char *note;
} usb_hid_info_t;

/* "keyboard", "hid-pos", "hid", "hid (unknown)". Static storage. */
const char *usb_hid_kind_name(usb_hid_kind_t kind);

/*
 * Every attached USB device with a HID interface, in bus and path order. Devices are
 * opened briefly to read strings and, for HID interfaces that are not boot keyboards,
 * the report descriptor (Linux's copy in sysfs when a kernel driver holds the
 * interface, else from the device); nothing is detached or claimed from another
 * driver. Blocking (up to a second per unresponsive device): for rmactl, not for the
 * daemon's loop.
 *
 * Returns 0 with *out (free with usb_hid_list_free) and *n set, possibly 0 devices;
 * -EIO when libusb cannot start; -ENOMEM. Output parameters are set only on success.
 */
int usb_list_hid(usb_hid_info_t **out, size_t *n);

/* Free what usb_list_hid returned. Accepts NULL. */
void usb_hid_list_free(usb_hid_info_t *list, size_t n);

#endif
