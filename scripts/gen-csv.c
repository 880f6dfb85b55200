/* `make bench` (bench-scale.sh, big suite): BYTES of a call-center style CSV on standard
 * output, fast enough (~1 GB/s) that the backup, not the generator, sets the pace.
 * Synthetic: ids, fictional phone numbers (555-01xx), amounts, dates and a few status
 * words from a pseudo-random sequence of SEED, so it compresses about as a real export
 * does (zstd -3: ~3x) and never repeats (no chunk is deduplicated by accident).
 *
 *   gen-csv BYTES [SEED]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static const char *status[] = {"resolved", "callback", "escalated", "voicemail",
                               "transferred", "dropped", "sale", "complaint"};

/* Decimal digits of v, at least `width` of them (zero-padded); returns the new end. */
static char *digits(char *p, uint64_t v, int width) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

static char *text(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* One row; returns the new end. */
static char *row(char *p, uint64_t id) {
    uint64_t r = next(), s = next();
    p = digits(p, id, 1);
    p = text(p, ",C");
    p = digits(p, r % 5000000, 7);
    p = text(p, ",+1-202-555-01");
    p = digits(p, (r >> 24) % 100, 2);
    p = text(p, ",A");
    p = digits(p, (r >> 32) % 400, 3);
    *p++ = ',';
    p = digits(p, s % 3600, 1);
    *p++ = ',';
    p = digits(p, (s >> 12) % 100000, 1);
    *p++ = '.';
    p = digits(p, (s >> 40) % 100, 2);
    p = text(p, ",2026-");
    p = digits(p, (s >> 48) % 12 + 1, 2);
    *p++ = '-';
    p = digits(p, (s >> 52) % 28 + 1, 2);
    *p++ = ',';
    p = text(p, status[(r >> 60) % 8]);
    *p++ = '\n';
    return p;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: gen-csv BYTES [SEED]\n");
        return 2;
    }
    unsigned long long left = strtoull(argv[1], NULL, 10);
    state = 0x9E3779B97F4A7C15ull ^ (argc > 2 ? strtoull(argv[2], NULL, 10) : 1);
    static char buf[1 << 20];
    uint64_t id = 1;
    char *end = text(buf, "call_id,customer,phone,agent,seconds,amount,date,status\n");
    while (left > 0) {
        while (end < buf + sizeof buf - 160) {
            end = row(end, id++);
        }
        size_t used = (size_t)(end - buf);
        size_t n = used < left ? used : (size_t)left;
        if (fwrite(buf, 1, n, stdout) != n) {
            return 1;
        }
        left -= n;
        end = buf;
    }
    return 0;
}
