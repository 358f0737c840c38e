/*
 * SHA-256 (FIPS 180-4), small and self-contained: the policy engine records the hash
 * of each policy file's bytes with every decision (docs/policy.md, "Auditing a
 * decision"), and pulling in a crypto library for one digest of a few kilobytes
 * would be a heavy dependency.
 */
#ifndef RMAD_SHA256_H
#define RMAD_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Length of the lowercase hex form plus NUL. */
#define SHA256_HEXLEN 65

typedef struct {
    uint32_t h[8];
    uint64_t len;         /* bytes hashed so far */
    unsigned char buf[64];
    size_t n;             /* bytes waiting in buf */
} sha256_t;

void sha256_init(sha256_t *s);
void sha256_update(sha256_t *s, const void *data, size_t len);
/* The digest of everything given; s must be initialised again before reuse. */
void sha256_final(sha256_t *s, unsigned char out[32]);

/* The digest of len bytes as 64 lowercase hex digits. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEXLEN]);

#endif
