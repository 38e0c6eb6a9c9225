/**
 * A name or email as people search for it: lower case, accents and diacritics removed, spaces
 * collapsed. "  CÁIO   souza " and "caio souza" fold to the same text.
 */
export function foldName(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{Diacritic}/gu, '')
    .toLowerCase()
    .trim()
    .replace(/\s+/g, ' ')
}
