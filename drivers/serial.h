/*
 * Serial ports (drivers/serial.c): the ports this machine has, for `rmactl scanners`,
 * and what a serial scanner is connected to right now.
 *
 * The serial scanner itself is made with scanner_new_serial() (drivers/scanner.h) and
 * used through scanner_t like any scanner. What it does, for the operator's docs:
 *
 * - Port: serial:PATH opens PATH (a udev link such as /dev/serial/by-id/... is
 *   resolved at every attempt); serial:usb=VID:PID opens the USB-serial port with that
 *   VID:PID, the first by path when several match. The port is opened read-only with
 *   the config's baud, parity, bits, stop and flow (default 9600 8N1, no flow
 *   control); DTR is raised, and RTS unless it is flow control.
 * - Events name the port read: scanner_id is "serial:" and the port's path,
 *   "serial:/dev/ttyUSB0" (the path as configured, or for usb=VID:PID the port found).
 *   A port that cannot be opened (absent, permission denied) is reported as a
 *   DISCONNECTED event with scanner_id = the scanner's spec, each reason once while it
 *   lasts; a port that went away is not reported again as absent.
 * - Lines end at CR, LF or CRLF. eol_ms counts silence: from the last byte received.
 *   With eol=required a line pending that long is REJECTED ("no end of line within N
 *   ms"); with eol=none it is taken as a scan. Either way an over-long line being
 *   dropped ends there too, so the next scan is not lost as its tail.
 * - Hang-up (unplug), end of file or a read error: the pending line is REJECTED ("port
 *   closed before end of line"), DISCONNECTED says why, and the port is reopened after
 *   0.5 s, then 1, 2, 4 and every 5 s until it is back (CONNECTED). A port that fails
 *   again within 5 s of opening keeps the longer delay.
 */
#ifndef RMAD_SERIAL_H
#define RMAD_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/scanner.h"

typedef enum {
    SERIAL_TRANSPORT_NATIVE,    /* a UART of the machine (or a port the kernel cannot place) */
    SERIAL_TRANSPORT_USB,       /* USB-serial adapter or USB CDC-ACM device */
    SERIAL_TRANSPORT_BLUETOOTH, /* Bluetooth RFCOMM */
} serial_transport_t;

/* One port. Every string is owned by the list (serial_ports_free). */
typedef struct {
    char *path;                 /* "/dev/ttyUSB0" */
    char *description;          /* one line, "FT232R USB UART - A50285BI"; never NULL */
    serial_transport_t transport;
    /* USB ports only: 0 / NULL otherwise, and NULL when the device does not say. */
    uint16_t usb_vid, usb_pid;
    int usb_bus, usb_address;
    char *usb_manufacturer;
    char *usb_product;
    char *usb_serial;
    /* Bluetooth ports only: "00:11:22:33:44:55", or NULL. */
    char *bluetooth_address;
} serial_port_info_t;

/* "native", "usb" or "bluetooth". Static. */
const char *serial_transport_name(serial_transport_t t);

/*
 * The serial ports the kernel lists, sorted by path: libserialport's enumeration of
 * /sys/class/tty, which leaves out virtual terminals and legacy UARTs (ttyS*) that are
 * not there (it probes those by opening them briefly). Without /sys/class/tty there
 * are none. Sets *ports (malloc'd array, NULL when there are none) and *n only on
 * success. Returns 0, -ENOMEM, or -errno (-EIO when the cause is unknown) when the
 * ports cannot be enumerated.
 */
int serial_list_ports(serial_port_info_t **ports, size_t *n);

/* Free a list from serial_list_ports. Accepts NULL and clears the caller's pointer. */
void serial_ports_free(serial_port_info_t **ports_p, size_t n);

/*
 * The path of the port a serial scanner reads now ("/dev/ttyUSB0"), or NULL when it is
 * not connected or s is not a serial scanner. Borrowed: valid until the scanner next
 * runs on the loop.
 */
const char *serial_scanner_port(const scanner_t *s);

#endif
