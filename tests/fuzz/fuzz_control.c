/* libFuzzer target: control-socket requests and replies (any local process sends them). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *req = NULL;
    const char *cmd = NULL;
    char *err = NULL;
    if (control_request_parse(data, size, &req, &cmd, &err) == 0) {
        static const char *const keys[] = { "limit", "receipt", NULL };
        char *kerr = NULL;
        (void)control_check_keys(req, keys, &kerr);
        free(kerr);
        json_decref(req);
    }
    free(err);
    /* An {"ok": false} reply is -EREMOTEIO with *reply set too (proto/control.h). */
    json_t *reply = NULL;
    err = NULL;
    (void)control_reply_parse(data, size, &reply, &err);
    json_decref(reply);
    free(err);
    return 0;
}
