/**
 * "View entries as…" on a list in the Variables view (its context menu): asks the adapter which
 * structs fit the list's entries (`vmcore/entryTypes`), offers them in a quick pick, sends the
 * choice (`vmcore/setEntryType`; the adapter then says `invalidated` and VS Code fetches the view
 * again) and remembers it in the workspace, per place the head lives, for the next sessions.
 */
import * as vscode from 'vscode';

import { DEBUG_TYPE } from '../launchConfig';
import { entryChoiceItems, EntryTypesAnswer, remember, RememberedChoice } from './choices';

export const VIEW_ENTRIES_AS_COMMAND = 'vmcore-dap.viewEntriesAs';
const STATE_KEY = 'vmcore-dap.entryTypes';

/** What VS Code passes to a `debug/variables/context` command. */
interface VariablesContext {
    sessionId?: string;
    variable?: { name: string; variablesReference: number };
}

export function registerEntryTypes(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
    const remembered = (): RememberedChoice[] => context.workspaceState.get<RememberedChoice[]>(STATE_KEY, []);
    context.subscriptions.push(
        vscode.commands.registerCommand(VIEW_ENTRIES_AS_COMMAND, async (arg?: VariablesContext) => {
            const session = vscode.debug.activeDebugSession;
            const variable = arg?.variable;
            if (session === undefined || session.type !== DEBUG_TYPE || variable === undefined) {
                return;
            }
            let answer: EntryTypesAnswer;
            try {
                answer = (await session.customRequest('vmcore/entryTypes', {
                    variablesReference: variable.variablesReference,
                })) as EntryTypesAnswer;
            } catch (err) {
                void vscode.window.showWarningMessage(`View entries as…: ${(err as Error).message}`);
                return;
            }
            const items = entryChoiceItems(answer);
            if (items.length === 0) {
                void vscode.window.showInformationMessage(
                    `${variable.name}: no struct fits the first entry; its nodes stay raw.`,
                );
                return;
            }
            const pick = await vscode.window.showQuickPick(items, {
                title: `View entries of ${variable.name} as…`,
                placeHolder: 'struct and the member that links it',
            });
            if (pick === undefined) {
                return;
            }
            await session.customRequest('vmcore/setEntryType', {
                variablesReference: variable.variablesReference,
                type: pick.entry.type,
                member: pick.entry.member,
            });
            if (answer.key !== null) {
                const choice = { key: answer.key, type: pick.entry.type, member: pick.entry.member };
                await context.workspaceState.update(STATE_KEY, remember(remembered(), choice));
                log.info(`entries of ${answer.key} shown as ${pick.entry.label}`);
            }
        }),
        // A new session starts with the remembered choices, sent once the dump is open (stopped).
        vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, {
            createDebugAdapterTracker(session) {
                let sent = false;
                return {
                    onDidSendMessage(message: { type?: string; event?: string }) {
                        if (sent || message.type !== 'event' || message.event !== 'stopped') {
                            return;
                        }
                        sent = true;
                        for (const choice of remembered()) {
                            session.customRequest('vmcore/setEntryType', choice).then(undefined, (err: Error) =>
                                log.warn(`remembered entry type ${choice.type}.${choice.member} for ${choice.key}: ${err.message}`),
                            );
                        }
                    },
                };
            },
        }),
    );
}
