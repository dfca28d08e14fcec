/** Every step of the end-to-end test has a deadline; this is the one helper that enforces it. */

/** Resolve like `promise`, or reject with `what` after `ms` milliseconds. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Poll `probe` every `intervalMs` until it returns a value other than undefined, for at most `ms`. */
export async function poll<T>(probe: () => Promise<T | undefined>, ms: number, what: string, intervalMs = 250): Promise<T> {
    const end = Date.now() + ms;
    let lastError: unknown;
    for (;;) {
        try {
            const value = await probe();
            if (value !== undefined) {
                return value;
            }
        } catch (e) {
            lastError = e;
        }
        if (Date.now() > end) {
            const why = lastError !== undefined ? ` (last error: ${String(lastError)})` : '';
            throw new Error(`timed out after ${ms / 1000} s: ${what}${why}`);
        }
        await new Promise((r) => setTimeout(r, intervalMs));
    }
}
