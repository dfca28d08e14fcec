/**
 * "View entries as…" without VS Code: the adapter's answer to `vmcore/entryTypes` as quick-pick
 * items, and the remembered choices (one per place a list head lives, `struct labbug_dev.reqs`)
 * that are sent again to every new session.
 */

/** One entry type as the adapter offers it (`vmcore/entryTypes`, docs/custom-requests.md). */
export interface EntryType {
    type: string;
    member: string;
    source: 'table' | 'slab' | 'chosen' | string;
    detail: string;
    label: string;
}

export interface EntryTypesAnswer {
    key: string | null;
    current: EntryType | null;
    candidates: EntryType[];
}

export interface EntryChoiceItem {
    label: string;
    description: string;
    picked: boolean;
    entry: EntryType;
}

/** A remembered choice: what `vmcore/setEntryType` takes besides the reference. */
export interface RememberedChoice {
    key: string;
    type: string;
    member: string;
}

const SOURCES: Record<string, string> = {
    table: 'well-known link',
    slab: 'fits the first entry\'s slab object',
    chosen: 'your choice',
};

/** Quick-pick items for the candidates, the current type first and marked. */
export function entryChoiceItems(answer: EntryTypesAnswer): EntryChoiceItem[] {
    const current = answer.current?.label;
    const items = answer.candidates.map((entry) => ({
        label: entry.label,
        description: [SOURCES[entry.source] ?? entry.source, entry.detail].filter((s) => s).join(': '),
        picked: entry.label === current,
        entry,
    }));
    return items.sort((a, b) => Number(b.picked) - Number(a.picked));
}

/**
 * The choices to keep across sessions: one per key, the latest winning. Only keys that name where a
 * head lives (`struct x.member`) are kept; an address means nothing in another dump.
 */
export function remember(choices: RememberedChoice[], choice: RememberedChoice): RememberedChoice[] {
    if (!choice.key.startsWith('struct ') && !choice.key.startsWith('union ')) {
        return choices;
    }
    return [...choices.filter((c) => c.key !== choice.key), choice];
}
