export declare const BUNDLE: string;
export declare const GC_FLAGS: readonly string[];
export declare function gcFlagsFor(command: string): string[];
export declare function redactArgument(arg: string): string;
export declare function relaunch(script: string): boolean;
export declare function watchParent(): void;
export declare function bundleIsFresh(): boolean;
