/*
 * A stand-in bcryptprimitives.dll for running Go programs under Wine 8
 * (Debian 12's wine64) in CI only; it is never shipped with cardd.exe.
 *
 * Go 1.24 and newer take their random bytes from ProcessPrng in
 * bcryptprimitives.dll, which Windows 10 and newer have and Wine 8 lacks:
 * without this file every Go program dies at start under Wine 8. It
 * implements ProcessPrng over RtlGenRandom (advapi32's SystemFunction036),
 * which Wine has. scripts/wintest builds it into the Wine prefix.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	/* RtlGenRandom takes a ULONG length: feed it in pieces. */
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
