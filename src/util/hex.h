/* util/hex.h - the value of a hexadecimal digit.
 *
 * Percent-escapes in query strings, the hex-encoded MACs of signed webhooks and the
 * \x, \u and \U escapes of PromQL strings all read hexadecimal digits of either case;
 * they share this one definition so that they agree on what a digit is (ASCII 0-9,
 * a-f, A-F, nothing else). Pure function; any thread.
 */
#ifndef RG_UTIL_HEX_H
#define RG_UTIL_HEX_H

/** Value (0 to 15) of the hexadecimal digit @c, in either case, or -1 when @c is not
 *  one (including negative values such as EOF and signed chars above 0x7f). */
int rg_hex_digit(int c);

#endif
