export function dynamicSymbols (file: string): Array<{ name: string, defined: boolean }>
export function parseDynamicSymbols (text: string): Array<{ name: string, defined: boolean }>
export function neededLibraries (file: string): string[]
export function newestVersions (file: string): Map<string, string>
export function machine (file: string): string
export function compareVersions (a: string, b: string): number
