export const LIVE: string
export const NOBODY: string
export const PLACEHOLDER: string
export interface CliMistake { mistake: string, args: string[], exit: number, output: RegExp, usage?: RegExp }
export const cliMistakes: CliMistake[]
export interface Interruption { command: string, args: string[], ready: RegExp, exit: number, output?: RegExp }
export const interruptions: Interruption[]
export interface ApiMistake { mistake: string, code: string | undefined, message?: RegExp, run: (discovery: any, live: string) => Promise<unknown> }
export const apiMistakes: ApiMistake[]
export interface ApiResult { mistake: string, expected: string, got: string, message: string, ok: boolean, ms: number }
export function runApiMistakes (discovery: unknown, live: string): Promise<ApiResult[]>
