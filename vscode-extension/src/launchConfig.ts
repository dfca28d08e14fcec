/**
 * The launch configuration of the `vmcore` debug type, as the adapter (`vmcore_dap`) accepts it.
 *
 * This file and `contributes.debuggers[0].configurationAttributes.launch` in package.json describe the
 * same thing; `test/unit/manifest.test.ts` checks that they name the same attributes. Kept free of the
 * `vscode` module so the validation can run in plain Node tests.
 */

/** Attributes the adapter reads from the `launch` request. */
export interface AdapterLaunchAttributes {
    /** Kernel crash dump (kdump-compressed, flattened or ELF). Required. */
    vmcore: string;
    /** vmlinux with DWARF; when absent the adapter finds it by build ID in `debugInfoDirectories`. */
    vmlinux?: string;
    /** Extra module debug info files or directories (.ko / .ko.debug). */
    debugInfo?: string[];
    /** Directories searched by build ID; empty or absent: the adapter's standard directories. */
    debugInfoDirectories?: string[];
    /** Build-time path prefix -> local directory. */
    sourceFileMap?: Record<string, string>;
    /** Kernel source tree for relative DWARF paths such as kernel/kthread.c. */
    sourceRoot?: string;
    /** Select the crashed task and report the panic as an exception (default true). */
    stopOnPanic?: boolean;
    /** Fetch missing debug info by build ID from debuginfod (null: when DEBUGINFOD_URLS is set). */
    debuginfod?: boolean | null;
}

/** Attributes only the extension reads: how to start the adapter and where it logs. */
export interface ExtensionLaunchAttributes {
    /** Interpreter that has `vmcore_dap` importable. */
    python?: string;
    /** `vmcore-dap` executable, or a directory holding the `vmcore_dap` package. */
    adapterPath?: string;
    /** Adapter log + DAP trace; passed to the adapter as the VMCORE_DAP_LOG environment variable. */
    logFile?: string;
}

/** A complete `vmcore` launch configuration as it appears in launch.json. */
export interface VmcoreLaunchConfig extends AdapterLaunchAttributes, ExtensionLaunchAttributes {
    type: 'vmcore';
    request: 'launch';
    name: string;
}

export const DEBUG_TYPE = 'vmcore';

/** Every attribute name of the launch configuration, for the manifest consistency test. */
export const LAUNCH_ATTRIBUTES: readonly string[] = [
    'vmcore',
    'vmlinux',
    'debugInfo',
    'debugInfoDirectories',
    'sourceFileMap',
    'sourceRoot',
    'stopOnPanic',
    'debuginfod',
    'python',
    'adapterPath',
    'logFile',
];
