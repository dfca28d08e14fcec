/**
 * Checks a `vmcore` launch configuration on disk before the adapter starts.
 *
 * VS Code shows an adapter that dies at launch as an empty Call Stack, so everything that can be known
 * from the file system (missing files, a vmlinux that is not ELF, a directory where a file belongs) is
 * reported here, in the words "<what failed>: <why> (<what to do>)". Paths are made absolute (relative
 * ones are taken from the workspace folder, `~` is the home directory) so the adapter, whose working
 * directory is not the user's, sees what the user meant. No `vscode` import: tested in plain Node.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { VmcoreLaunchConfig } from './launchConfig';

export type Severity = 'error' | 'warning';

/** One thing wrong with the configuration, tied to the attribute that causes it. */
export interface Problem {
    severity: Severity;
    attribute: string;
    message: string;
}

export interface ValidationResult {
    /** The configuration with every path attribute made absolute. */
    config: VmcoreLaunchConfig;
    problems: Problem[];
}

/** File signatures of the dump formats libkdumpfile (drgn's reader) opens. */
const DUMP_SIGNATURES: readonly { name: string; bytes: Buffer }[] = [
    { name: 'ELF core', bytes: Buffer.from([0x7f, 0x45, 0x4c, 0x46]) },
    { name: 'kdump-compressed', bytes: Buffer.from('KDUMP   ', 'latin1') },
    { name: 'diskdump', bytes: Buffer.from('DISKDUMP', 'latin1') },
    { name: 'flattened makedumpfile', bytes: Buffer.from('makedumpfile', 'latin1') },
];
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** Expand `~` and resolve `p` against `baseDir` (or leave it relative to the process when none). */
export function absolutePath(p: string, baseDir: string | undefined): string {
    let expanded = p;
    if (expanded === '~' || expanded.startsWith('~/')) {
        expanded = path.join(os.homedir(), expanded.slice(1));
    }
    if (path.isAbsolute(expanded)) {
        return path.normalize(expanded);
    }
    return path.resolve(baseDir ?? process.cwd(), expanded);
}

function readHead(file: string, length: number): Buffer {
    const fd = fs.openSync(file, 'r');
    try {
        const buf = Buffer.alloc(length);
        const n = fs.readSync(fd, buf, 0, length, 0);
        return buf.subarray(0, n);
    } finally {
        fs.closeSync(fd);
    }
}

/** Why `file` cannot be read as a regular file, or undefined when it can. */
function fileProblem(file: string): string | undefined {
    let st: fs.Stats;
    try {
        st = fs.statSync(file);
    } catch {
        return 'no such file';
    }
    if (st.isDirectory()) {
        return 'it is a directory, not a file';
    }
    try {
        fs.accessSync(file, fs.constants.R_OK);
    } catch {
        return 'permission denied (vmcores under /var/crash are often readable by root only)';
    }
    return undefined;
}

function isDirectory(p: string): boolean {
    try {
        return fs.statSync(p).isDirectory();
    } catch {
        return false;
    }
}

/** The name of the dump format `head` starts with, or undefined when it matches none. */
export function dumpFormat(head: Buffer): string | undefined {
    for (const sig of DUMP_SIGNATURES) {
        if (head.length >= sig.bytes.length && head.subarray(0, sig.bytes.length).equals(sig.bytes)) {
            return sig.name;
        }
    }
    return undefined;
}

function checkVmcore(vmcore: string | undefined, problems: Problem[]): void {
    if (vmcore === undefined || vmcore.trim() === '') {
        problems.push({
            severity: 'error',
            attribute: 'vmcore',
            message:
                'No vmcore given: the launch configuration has no "vmcore" attribute ' +
                '(set it to the crash dump\'s path, e.g. "/var/crash/<date>/vmcore", or to ' +
                '"${command:vmcore-dap.pickVmcore}" to choose it when debugging starts)',
        });
        return;
    }
    const why = fileProblem(vmcore);
    if (why !== undefined) {
        problems.push({
            severity: 'error',
            attribute: 'vmcore',
            message: `Cannot open vmcore '${vmcore}': ${why} (check "vmcore" in launch.json)`,
        });
        return;
    }
    const head = readHead(vmcore, 16);
    if (head.length === 0) {
        problems.push({
            severity: 'error',
            attribute: 'vmcore',
            message: `Cannot open vmcore '${vmcore}': the file is empty (the dump was probably not saved completely)`,
        });
    } else if (dumpFormat(head) === undefined) {
        problems.push({
            severity: 'warning',
            attribute: 'vmcore',
            message:
                `'${vmcore}' does not look like a kernel crash dump: it is neither an ELF core nor a ` +
                'kdump-compressed file (check the path; vmcores are usually under /var/crash)',
        });
    }
}

function checkVmlinux(vmlinux: string, problems: Problem[]): void {
    const why = fileProblem(vmlinux);
    if (why !== undefined) {
        problems.push({
            severity: 'error',
            attribute: 'vmlinux',
            message:
                `Cannot open vmlinux '${vmlinux}': ${why} (fix "vmlinux" in launch.json, or remove it ` +
                'to find vmlinux by build ID in "debugInfoDirectories")',
        });
        return;
    }
    if (!readHead(vmlinux, 4).equals(ELF_MAGIC)) {
        problems.push({
            severity: 'error',
            attribute: 'vmlinux',
            message:
                `'${vmlinux}' is not an ELF file (give the uncompressed vmlinux with debug info, ` +
                'not vmlinuz or a bzImage)',
        });
    }
}

function nonEmpty(s: string | undefined): s is string {
    return s !== undefined && s.trim() !== '';
}

/**
 * Make the configuration's paths absolute and list what is wrong with them.
 *
 * Errors stop the launch; warnings are shown but the user may go on (an unknown dump signature may
 * still be a format libkdumpfile reads; a missing debug info directory is harmless).
 */
export function validateLaunchConfig(
    input: VmcoreLaunchConfig,
    baseDir: string | undefined,
): ValidationResult {
    const problems: Problem[] = [];
    const config: VmcoreLaunchConfig = { ...input };
    const abs = (p: string): string => absolutePath(p, baseDir);

    if (nonEmpty(config.vmcore)) {
        config.vmcore = abs(config.vmcore);
    }
    checkVmcore(config.vmcore, problems);

    if (nonEmpty(config.vmlinux)) {
        config.vmlinux = abs(config.vmlinux);
        checkVmlinux(config.vmlinux, problems);
    } else {
        delete config.vmlinux;
    }

    if (config.debugInfo !== undefined) {
        if (!Array.isArray(config.debugInfo)) {
            problems.push({
                severity: 'error',
                attribute: 'debugInfo',
                message: '"debugInfo" must be a list of paths (write ["/path/a.ko", "/path/dir"])',
            });
        } else {
            config.debugInfo = config.debugInfo.map(abs);
            for (const p of config.debugInfo) {
                if (!fs.existsSync(p)) {
                    problems.push({
                        severity: 'error',
                        attribute: 'debugInfo',
                        message: `Cannot find module debug info '${p}': no such file or directory (fix or remove it in "debugInfo")`,
                    });
                }
            }
        }
    }

    if (config.debugInfoDirectories !== undefined) {
        if (!Array.isArray(config.debugInfoDirectories)) {
            problems.push({
                severity: 'error',
                attribute: 'debugInfoDirectories',
                message: '"debugInfoDirectories" must be a list of directories (write ["/usr/lib/debug"])',
            });
        } else {
            config.debugInfoDirectories = config.debugInfoDirectories.map(abs);
        }
    }

    if (nonEmpty(config.sourceRoot)) {
        config.sourceRoot = abs(config.sourceRoot);
        if (!isDirectory(config.sourceRoot)) {
            problems.push({
                severity: 'error',
                attribute: 'sourceRoot',
                message: `Kernel source tree '${config.sourceRoot}' is not a directory (fix "sourceRoot" in launch.json or remove it)`,
            });
        }
    } else {
        delete config.sourceRoot;
    }

    if (config.sourceFileMap !== undefined) {
        if (typeof config.sourceFileMap !== 'object' || Array.isArray(config.sourceFileMap)) {
            problems.push({
                severity: 'error',
                attribute: 'sourceFileMap',
                message: '"sourceFileMap" must be an object mapping a build path prefix to a local directory',
            });
        } else {
            const mapped: Record<string, string> = {};
            for (const [from, to] of Object.entries(config.sourceFileMap)) {
                mapped[from] = abs(to);
                if (!isDirectory(mapped[from])) {
                    problems.push({
                        severity: 'warning',
                        attribute: 'sourceFileMap',
                        message: `"sourceFileMap" maps '${from}' to '${mapped[from]}', which is not a directory (sources under it will not open)`,
                    });
                }
            }
            config.sourceFileMap = mapped;
        }
    }

    if (config.stopOnPanic !== undefined && typeof config.stopOnPanic !== 'boolean') {
        problems.push({
            severity: 'error',
            attribute: 'stopOnPanic',
            message: '"stopOnPanic" must be true or false',
        });
    }

    if (config.debuginfod !== undefined && config.debuginfod !== null && typeof config.debuginfod !== 'boolean') {
        problems.push({
            severity: 'error',
            attribute: 'debuginfod',
            message: '"debuginfod" must be true, false or null',
        });
    }

    if (nonEmpty(config.logFile)) {
        config.logFile = abs(config.logFile);
        const dir = path.dirname(config.logFile);
        if (!isDirectory(dir)) {
            problems.push({
                severity: 'error',
                attribute: 'logFile',
                message: `Cannot write the adapter log '${config.logFile}': directory '${dir}' does not exist (fix "logFile" or remove it)`,
            });
        }
    } else {
        delete config.logFile;
    }

    for (const key of ['python', 'adapterPath'] as const) {
        const value = config[key];
        if (nonEmpty(value)) {
            config[key] = value.includes('/') || value.startsWith('~') ? abs(value) : value;
        } else {
            delete config[key];
        }
    }

    return { config, problems };
}
