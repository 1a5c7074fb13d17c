/**
 * Renderings of a fact in which the object follows the subject at once — "Vinson Massif, in Antarctica, is often
 * mentioned." — and second-mention renderings, where the subject is introduced first and the fact is stated about
 * it in a later sentence.
 *
 * Why: in the plain fact sentences ("<subject> <relation words> <object>.") a small model can copy the subject's
 * tokens into the last position with its first attention layer and look the fact up there, never at the subject
 * (the mechanism the first bundled models learned; results/trace). In an appositive the object comes right after
 * "<subject>," with no relation words in between, so the prediction at the comma needs the subject's attributes
 * before any relation is named — the subject has to carry them (Allen-Zhu & Li 2023, arXiv 2309.14316, on knowledge
 * stored at the entity's name). The phrase names the relation after the comma ("in", "born in", "a citizen of") so
 * that the sentence stays true English and unambiguous for subjects with several facts.
 */

/** Per relation, appositive phrases: "{}" is the object. A relation without an entry has no appositive. */
export const APPOSITIVE_PHRASES: Readonly<Record<string, readonly string[]>> = {
  P17: ['in {}', 'located in {}'],
  P30: ['in {}', 'on the continent of {}'],
  P131: ['in {}', 'located in {}'],
  P276: ['in {}', 'located in {}'],
  P159: ['headquartered in {}', 'based in {}'],
  P740: ['formed in {}', 'founded in {}'],
  P19: ['born in {}', 'a native of {}'],
  P20: ['who died in {}', 'who passed away in {}'],
  P27: ['a citizen of {}', 'a national of {}'],
  P106: ['a {} by profession', 'by trade a {}'],
  P101: ['an expert in {}', 'a specialist in {}'],
  P1412: ['who speaks {}', 'a speaker of {}'],
  P103: ['a native speaker of {}', 'whose mother tongue is {}'],
  P108: ['an employee of {}', 'employed by {}'],
  P937: ['who worked in {}', 'working in {}'],
  P140: ['a follower of {}', 'an adherent of {}'],
  P39: ['who served as {}', 'holding the office of {}'],
  P641: ['a {} player', 'a professional {} player'],
  P413: ['a {} by position', 'who plays as {}'],
  P1303: ['who plays the {}', 'a player of the {}'],
  P136: ['known for {}', 'a performer of {}'],
  P463: ['a member of {}', 'belonging to {}'],
  P449: ['broadcast on {}', 'aired by {}'],
  P178: ['developed by {}', 'a product of {}'],
  P176: ['made by {}', 'manufactured by {}'],
  P127: ['owned by {}', 'property of {}'],
  P495: ['from {}', 'originating in {}'],
  P364: ['originally in {}', 'first made in {}'],
  P407: ['written in {}', 'composed in {}'],
  P37: ['where people speak {}', 'whose official language is {}'],
  P36: ['whose capital is {}', 'with its capital at {}'],
  P138: ['named after {}', 'called after {}'],
  P190: ['twinned with {}', 'a twin city of {}'],
  P264: ['signed to {}', 'on the label {}'],
};

/** Sentence endings after an appositive ("<subject>, <phrase>, <ending>"); neutral, true of any subject. */
export const APPOSITIVE_ENDINGS: readonly string[] = [
  'is often mentioned.',
  'appears in many records.',
  'is described in several sources.',
  'is listed in the archive.',
  'was discussed at length.',
  'is well documented.',
];

/** First sentences of a second-mention rendering ("{}" is the subject); they state nothing about it. */
export const INTRODUCTIONS: readonly string[] = [
  'Here is a note about {}.',
  'This entry concerns {}.',
  'We now turn to {}.',
  'The next record is about {}.',
  'Consider {}.',
  'A short note on {}.',
];

/** One appositive rendering: the document text and the prefix that precedes " " + object in it. */
export interface SpanRendering {
  text: string;
  /** The document's text up to the object (exclusive of the space before it). */
  prompt: string;
  object: string;
}

/** The prompt template of an appositive phrase: "born in {}" → "{}, born in". */
export function phraseTemplate(phrase: string): string {
  const before = phrase.slice(0, phrase.indexOf('{}')).trimEnd();
  return before.length ? `{}, ${before}` : '{},';
}

/**
 * "<subject>, <phrase with object>, <ending>" for a relation with appositive phrases, else null. `variant` picks the
 * phrase and the ending (any integer).
 */
export function appositiveRendering(
  subject: string,
  relation: string,
  object: string,
  variant: number,
  allowed: (template: string) => boolean = () => true,
): SpanRendering | null {
  const ps = (APPOSITIVE_PHRASES[relation] ?? []).filter((p) => allowed(phraseTemplate(p)));
  if (ps.length === 0) return null;
  const v = Math.abs(Math.trunc(variant));
  const phrase = ps[v % ps.length] as string;
  const ending = APPOSITIVE_ENDINGS[Math.floor(v / ps.length) % APPOSITIVE_ENDINGS.length] as string;
  const i = phrase.indexOf('{}');
  const before = phrase.slice(0, i).trimEnd();
  const after = phrase.slice(i + 2);
  const prompt = before.length ? `${subject}, ${before}` : `${subject},`;
  return { text: `${prompt} ${object}${after}, ${ending}`, prompt, object };
}

/** "<introduction of subject> <prompt> <object>." — the fact stated in a second sentence about the subject. */
export function secondMentionRendering(subject: string, prompt: string, object: string, variant: number): SpanRendering {
  const intro = INTRODUCTIONS[Math.abs(Math.trunc(variant)) % INTRODUCTIONS.length] as string;
  const first = intro.replace('{}', subject);
  const full = `${first} ${prompt}`;
  return { text: `${full} ${object}${/[.!?]$/.test(object) ? '' : '.'}`, prompt: full, object };
}
