// The page at GET /: chat with the served model (streamed through /v1/chat/completions) beside
// live figures read from /metrics. Self-contained: no outside scripts, styles or fonts.
#include "serving/http_server.h"

namespace weft::serving {

const std::string& chat_page() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weft</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
main{flex:3;display:flex;flex-direction:column;padding:1em}
aside{flex:1;background:#f4f4f6;padding:1em;font-size:.9em;overflow:auto}
#log{flex:1;overflow:auto;border:1px solid #ddd;border-radius:6px;padding:.5em;white-space:pre-wrap}
.user{color:#0645ad;margin:.4em 0}.assistant{margin:.4em 0 1em}.error{color:#b00020}
.note{color:#777;font-size:.85em;margin:-.8em 0 1em}
form{display:flex;gap:.5em;margin-top:.5em}textarea{flex:1;height:3em}
td{padding:2px 6px}td:last-child{text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<main><h2>weft <small id="model"></small></h2><div id="log"></div>
<form id="f"><textarea id="msg" placeholder="Say something (Enter sends)"></textarea>
<button id="send" type="submit">Send</button></form></main>
<aside><h3>Live figures</h3><table id="figs"></table></aside>
<script>
const log=document.getElementById('log'),msg=document.getElementById('msg'),btn=document.getElementById('send');
const turns=[],maxTokens=256;let model='';
fetch('/v1/models').then(r=>r.json()).then(j=>{model=j.data[0].id;document.getElementById('model').textContent=model;}).catch(()=>{});
function line(cls,text){const d=document.createElement('div');d.className=cls;d.textContent=text;log.appendChild(d);log.scrollTop=log.scrollHeight;return d;}
async function send(text){
  turns.push({role:'user',content:text});line('user','> '+text);
  const out=line('assistant','');let reply='',cut=false;btn.disabled=true;
  try{
    const r=await fetch('/v1/chat/completions',{method:'POST',headers:{'Content-Type':'application/json'},
      body:JSON.stringify({model:model||undefined,messages:turns,stream:true,max_tokens:maxTokens})});
    if(!r.ok){const t=await r.text();let m=t;try{m=JSON.parse(t).error.message;}catch(e){}throw new Error(m);}
    const reader=r.body.getReader(),dec=new TextDecoder();let buf='';
    for(;;){const {done,value}=await reader.read();if(done)break;buf+=dec.decode(value,{stream:true});
      let i;while((i=buf.indexOf('\n\n'))>=0){const ev=buf.slice(0,i);buf=buf.slice(i+2);
        if(!ev.startsWith('data: '))continue;const data=ev.slice(6);if(data==='[DONE]')continue;
        const j=JSON.parse(data);if(j.error)throw new Error(j.error.message);
        const c=j.choices&&j.choices[0];if(c&&c.finish_reason==='length')cut=true;
        if(c&&c.delta&&c.delta.content){reply+=c.delta.content;out.textContent=reply;log.scrollTop=log.scrollHeight;}}}
    turns.push({role:'assistant',content:reply});if(cut)line('note','(stopped at the '+maxTokens+'-token limit)');
  }catch(e){turns.pop();out.classList.add('error');out.textContent=(reply?reply+'\n':'')+'error: '+e.message;}
  finally{btn.disabled=false;log.scrollTop=log.scrollHeight;}
}
document.getElementById('f').onsubmit=e=>{e.preventDefault();const t=msg.value.trim();if(t&&!btn.disabled){msg.value='';send(t);}};
msg.onkeydown=e=>{if(e.key==='Enter'&&!e.shiftKey&&!e.isComposing){e.preventDefault();document.getElementById('f').requestSubmit();}};
const shown={weft_num_requests_running:'running',weft_num_requests_waiting:'waiting',weft_request_success_total:'requests finished',
  weft_kv_cache_usage_perc:'KV cache used',weft_prompt_tokens_total:'prompt tokens',weft_generation_tokens_total:'tokens generated',
  weft_num_preemptions_total:'preemptions'};
async function figures(){try{const t=await (await fetch('/metrics')).text();const v={};
  for(const l of t.split('\n')){const m=l.match(/^(\w+)\{[^}]*\} (\S+)$/);if(m&&shown[m[1]])v[m[1]]=(v[m[1]]||0)+parseFloat(m[2]);}
  const rows=[];for(const k in shown)if(k in v){const x=k==='weft_kv_cache_usage_perc'?(100*v[k]).toFixed(1)+'%':v[k];
    rows.push('<tr><td>'+shown[k]+'</td><td>'+x+'</td></tr>');}
  document.getElementById('figs').innerHTML=rows.join('');}catch(e){}
  setTimeout(figures,1000);}
figures();
</script></body></html>
)HTML";
  return page;
}

}  // namespace weft::serving
