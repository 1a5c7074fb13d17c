import { Tokenizer } from '../lib/tokenizer/tokenizer.js';
const tok = await Tokenizer.fromFile('/work/shared/fixtures/tokenizers/gpt-neox-20b/tokenizer.json');
console.log(tok.vocabSize, tok.eosId, tok.bosId);
for (const s of ['Hello world', 'The Eiffel Tower is located in the city of', ' Paris', 'naïve café  two  spaces\n']) {
  const e = tok.encode(s);
  console.log(JSON.stringify(s), e.ids, e.tokens, e.offsets, tok.decode(e.ids) === s);
}
console.log(tok.tokenRange('The Eiffel Tower is located in the city of', 'Eiffel Tower'));
